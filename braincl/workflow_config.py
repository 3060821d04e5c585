"""The Snakemake workflow's config, read the way ``braincl run`` reads an experiment file.

Snakemake reads ``config/config.yaml`` and every ``--configfile`` with PyYAML's YAML 1.1 rules: a
``set:`` value ``1e-3`` would reach a run as the string "1e-3", and a key given twice would silently
keep its last value. ``reread`` reads the same files again with ``braincl.yamlio`` (YAML 1.2
numbers, duplicate keys refused) and merges them as Snakemake does (the workflow's own config file,
then each ``--configfile``, then ``--config KEY=VALUE``). ``check`` then checks the grid's budgets
with the CLI's parser, so that a negative or unreadable budget is told what to write instead of
getting the schema's pattern, and the schema with the CLI's strict integers and messages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import yamlio
from .config import deep_merge
from .units import parse_bytes

# budgets name run folders: digits, an optional decimal part, an optional unit (the schema's pattern)
_FOLDER_SAFE = re.compile(r"^[0-9]+(\.[0-9]+)?[A-Za-z]*$")


class WorkflowConfigError(ValueError):
    """A workflow config that cannot be used; one line naming the file or grid entry."""


def read(path: str | Path) -> dict:
    try:
        data = yamlio.read_file(path, "workflow config file")
    except yamlio.YamlFileError as err:
        raise WorkflowConfigError(str(err)) from None
    if not isinstance(data, dict):
        raise WorkflowConfigError(f"workflow config file {path} must hold a mapping of settings at the top level")
    return data


def merged(own_files: list, cli_files: list, cli_config: dict | None = None, replace_own: bool = False) -> dict:
    """The config Snakemake builds from these sources, each file read with ``braincl.yamlio``."""
    config: dict = {}
    for path in ([] if replace_own else own_files) + cli_files:
        config = deep_merge(config, read(path))
    return deep_merge(config, dict(cli_config or {}))


def reread(config: dict, workflow) -> None:
    """Replace the contents of Snakemake's ``config`` by ``merged`` over the files it read."""
    settings = workflow.config_settings
    cli_files = [Path(f) for f in settings.configfiles]
    own_files = [Path(f) for f in workflow.configfiles[len(cli_files):]]  # ``configfile:`` directives
    fresh = merged(own_files, cli_files, dict(settings.config or {}),
                   replace_own=bool(getattr(settings, "replace_workflow_config", False)))
    config.clear()
    config.update(fresh)


def _suggest(nbytes: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if nbytes >= size and nbytes % size == 0:
            return f"{nbytes // size}{unit}"
    return f"{nbytes}B"


def budget_problem(budget: Any) -> str | None:
    """What is wrong with one budget of a grid entry and what to write instead, or None."""
    if isinstance(budget, bool) or not isinstance(budget, (str, int, float)):
        return f"budget {budget!r} is not a byte size; write sizes such as 500KB or 1.5MB"
    try:
        nbytes = parse_bytes(budget)
    except ValueError as err:
        return f"budgets: {err}; write sizes such as 500KB or 1.5MB"
    if isinstance(budget, str) and _FOLDER_SAFE.match(budget):
        return None
    given = f"{budget!r}" if isinstance(budget, str) else f"{budget!r} (read as a number)"
    return f"budget {given} names the runs' folder: write it as digits with a unit, e.g. {_suggest(nbytes)}"


def check(config: dict, schema_path: str | Path) -> None:
    """``check_budgets``, then the schema with the CLI's strict integers and messages (JSON Schema
    alone would take a seed ``1e0`` as the integer 1 and name its folder ``seed1.0``). Snakemake's
    own ``validate`` runs after this and fills in the schema's defaults."""
    from .config import format_schema_error, schema_validator

    check_budgets(config)
    schema = yamlio.read_file(schema_path, "workflow config schema")
    errors = sorted(schema_validator(schema).iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise WorkflowConfigError(f"config {format_schema_error(errors[0])}{more}")


def check_budgets(config: dict) -> None:
    """Raise ``WorkflowConfigError`` for the first unusable budget in ``grid`` or ``targets``; leaves
    every other shape problem to the schema."""
    groups = [("grid", config.get("grid"))]
    targets = config.get("targets")
    if isinstance(targets, dict):
        groups += [(f"targets.{name}", entries) for name, entries in targets.items()]
    for group, entries in groups:
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            budgets = entry.get("budgets") if isinstance(entry, dict) else None
            for budget in budgets if isinstance(budgets, list) else []:
                problem = budget_problem(budget)
                if problem:
                    name = entry.get("label") or entry.get("dataset") or "?"
                    raise WorkflowConfigError(f"config {group} entry {i + 1} ({name}): {problem}")
