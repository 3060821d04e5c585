"""Run configs: YAML, layered defaults, ``--set`` overrides, and validation before any work.

Layers, lowest first: ``defaults/base.yaml`` < ``defaults/datasets/<dataset>.yaml`` <
``defaults/methods/<method>.yaml`` (its ``params``, then its ``by_dataset.<dataset>`` block) <
the experiment file < ``--set key=value``. The resolved config is written into every result.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .units import parse_bytes


class ConfigError(ValueError):
    """A config that cannot be run. The message says what is wrong and what is valid."""


def _package_yaml(*parts: str) -> dict | None:
    node = resources.files("braincl").joinpath(*parts)
    if not node.is_file():
        return None
    return yaml.safe_load(node.read_text()) or {}


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value (for example train.epochs=3), got {item!r}")
    key, raw = item.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set has an empty key in {item!r}")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({err})") from None
    return key.split("."), value


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        path, value = parse_override(item)
        node = cfg
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return cfg


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level, not {type(data).__name__}")
    return data


def method_defaults(method: str, dataset: str) -> dict:
    """The method's YAML defaults as a config fragment (``method.params``, optionally ``train``)."""
    data = _package_yaml("defaults", "methods", f"{method}.yaml") or {}
    fragment = {"method": {"params": data.get("params", {}) or {}}}
    if data.get("train"):
        fragment["train"] = data["train"]
    specific = (data.get("by_dataset") or {}).get(dataset) or {}
    if specific:
        fragment = deep_merge(fragment, {"method": {"params": specific.get("params", {}) or {}}})
        if specific.get("train"):
            fragment = deep_merge(fragment, {"train": specific["train"]})
    return fragment


def resolve(user: dict, overrides: list[str] | None = None) -> dict:
    """Layer the defaults under ``user`` and ``overrides``; return the full config (unvalidated)."""
    user = apply_overrides(user, overrides)
    cfg = _package_yaml("defaults", "base.yaml")
    dataset = (user.get("dataset") or {}).get("name", cfg["dataset"]["name"])
    method = (user.get("method") or {}).get("name", cfg["method"]["name"])
    dataset_defaults = _package_yaml("defaults", "datasets", f"{dataset}.yaml") or {}
    if dataset_defaults.get("dataset", {}).get("transforms"):
        # a data set's transforms replace the generic ones whole: lists do not merge
        cfg["dataset"]["transforms"] = {}
    cfg = deep_merge(cfg, dataset_defaults)
    cfg = deep_merge(cfg, method_defaults(str(method), str(dataset)))
    return deep_merge(cfg, user)


def _schema() -> dict:
    return _package_yaml("schemas", "config.schema.yaml")


def _format_schema_error(err) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        allowed = sorted((err.schema.get("properties") or {}).keys())
        return f"{where}: {err.message}; valid keys here: {', '.join(allowed)}"
    if err.validator == "enum":
        return f"{where}: {err.instance!r} is not one of {err.validator_value}"
    return f"{where}: {err.message}"


def validate(cfg: dict, check_names: bool = True) -> dict:
    """Validate a resolved config. Raises ConfigError listing every problem found."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    problems = [_format_schema_error(e) for e in sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))]
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))

    try:
        budget = None if cfg["memory"].get("budget") is None else parse_bytes(cfg["memory"]["budget"])
    except ValueError as err:
        raise ConfigError(f"memory.budget: {err}") from None

    scenario = cfg["scenario"]
    if scenario.get("tasks"):
        flat = [c for task in scenario["tasks"] for c in task]
        if len(flat) != len(set(flat)):
            raise ConfigError("scenario.tasks: a class appears in more than one task; tasks must be disjoint")

    if check_names:
        from .registry import BACKBONES, DATASETS, METHODS

        for kind, registry, name in (
            ("method.name", METHODS, cfg["method"]["name"]),
            ("dataset.name", DATASETS, cfg["dataset"]["name"]),
            ("model.backbone", BACKBONES, cfg["model"]["backbone"]),
        ):
            if name not in registry:
                raise ConfigError(f"{kind}: unknown {registry.kind} {name!r}; valid: {', '.join(registry.names())}")
        method_cls = METHODS.get(cfg["method"]["name"])
        method_yaml = _package_yaml("defaults", "methods", f"{cfg['method']['name']}.yaml") or {}
        known = set(method_yaml.get("params") or {})
        unknown = sorted(set(cfg["method"].get("params") or {}) - known)
        if unknown:
            valid = ", ".join(sorted(known)) or "(none)"
            raise ConfigError(
                f"method.params: unknown parameter(s) {', '.join(unknown)} for method {cfg['method']['name']!r}; "
                f"valid: {valid}")
        if getattr(method_cls, "needs_budget", True) and budget is None:
            raise ConfigError(
                f"memory.budget is required for method {cfg['method']['name']!r}; "
                "give it in bytes with a unit, e.g. memory.budget=500KB")
    return cfg


def load(path: str | Path | None, overrides: list[str] | None = None, check_names: bool = True) -> dict:
    user = load_yaml(path) if path is not None else {}
    return validate(resolve(user, overrides), check_names=check_names)


def get(cfg: dict, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
