"""The workflow's conventions: `snakemake --lint` is clean, every rule that runs a command names a
log, a conda environment and a container, and the conda files and the Containerfile install the
pinned set of pyproject.toml. Conda and container registries are not reachable from the tests, so
the environments are checked by reading their files, not by building them."""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_ENV = REPO / "workflow" / "envs" / "braincl.yaml"
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]


def pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pins(requirements) -> dict:
    """name -> specifier, from requirement strings; a name listed twice is an error."""
    out = {}
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name not in out, f"{name} is listed twice"
        out[name] = req.specifier
    return out


def conda_env(path):
    """(conda dependencies, pip requirements) of a conda environment file."""
    env = yaml.safe_load(path.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [p for d in env["dependencies"] if isinstance(d, dict) for p in d.get("pip", [])]
    return env, conda, pip


def conda_python(conda_deps) -> str:
    [python] = [d for d in conda_deps if re.match(r"python\b", d)]
    return python.split("=", 1)[1]


def test_lint_is_clean(tmp_path):
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--lint",
                          "--configfile", str(REPO / "config" / "config.yaml")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, f"snakemake --lint found problems:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"


def rule_blocks(text: str):
    """(rule name, source) of each rule in a Snakefile: from its `rule` line to the next one."""
    starts = [m for m in re.finditer(r"^(\s*)rule\b\s*(\w*)\s*:", text, flags=re.M)]
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        block = text[m.start():end]
        name = m.group(2) or re.search(r"name:\s*\n\s*(.+)", block).group(1).strip()
        yield name, block


def test_every_rule_that_runs_a_command_has_log_conda_and_container():
    """The lint asks for a conda environment *or* a container; the workflow gives both. Rules
    without a command (all, reference, the group targets) run nothing and need neither."""
    checked = 0
    for path in RULE_FILES:
        for name, block in rule_blocks(path.read_text()):
            if not re.search(r"^\s*(shell|run|script):", block, flags=re.M):
                continue
            checked += 1
            for directive in ("log", "conda", "container"):
                assert re.search(rf"^\s*{directive}:", block, flags=re.M), f"rule {name} ({path.name}) has no {directive}:"
            conda = re.search(r"^\s*conda:\s*\n\s*\"(.+?)\"", block, flags=re.M)
            assert conda, f"rule {name} ({path.name}): conda: must name a file"
            assert (path.parent / conda.group(1)).resolve() == WORKFLOW_ENV, f"rule {name}: conda: {conda.group(1)}"
    assert checked >= 7  # train, analysis, reference_table, full, claims, figures, the group tables


def test_workflow_env_pins_exactly_pyproject():
    env, conda, pip = conda_env(WORKFLOW_ENV)
    assert pins(pip) == pins(pyproject()["dependencies"]), \
        "workflow/envs/braincl.yaml and pyproject.toml [project.dependencies] must pin the same set"
    assert sorted(d for d in conda if not re.match(r"python\b", d)) == ["pip"]


def test_environment_yml_is_the_same_set_plus_tests_and_the_suite():
    env, conda, pip = conda_env(REPO / "environment.yml")
    project = pyproject()
    editable = [p for p in pip if p.startswith("-e ")]
    assert editable == ["-e ."], "environment.yml installs the checkout with `-e .`"
    expected = pins(project["dependencies"] + project["optional-dependencies"]["test"])
    assert pins([p for p in pip if not p.startswith("-e ")]) == expected, \
        "environment.yml must pin pyproject.toml's dependencies and its test extra, nothing else"
    workflow_env, workflow_conda, _ = conda_env(WORKFLOW_ENV)
    assert sorted(conda) == sorted(workflow_conda) and env["channels"] == workflow_env["channels"]


def containerfile_instructions():
    """(INSTRUCTION, arguments) of the Containerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in (REPO / "Containerfile").read_text().splitlines():
        if raw.strip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        lines.append(current)
        current = ""
    assert not current, "Containerfile ends inside a continued line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_containerfile_installs_exactly_the_pinned_set():
    """One `pip install .` from a copy of pyproject.toml: the image gets the pinned set and the suite,
    and no command installs anything else (no extra packages, requirement files or upgrades)."""
    instructions = containerfile_instructions()
    [base] = [args for op, args in instructions if op == "FROM"]
    image = re.fullmatch(r"(?:docker\.io/library/)?python:(\d+\.\d+)-slim", base)
    assert image, f"Containerfile: FROM {base}; expected the official python:X.Y-slim image"
    _, conda, _ = conda_env(WORKFLOW_ENV)
    assert image.group(1) == conda_python(conda), "the image's Python must be the conda environments' Python"
    assert image.group(1) + ".0" in SpecifierSet(pyproject()["requires-python"])

    copied = [args.split()[:-1] for op, args in instructions if op in ("COPY", "ADD")]
    assert any("pyproject.toml" in sources for sources in copied)
    installs = []
    for op, args in instructions:
        if op != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", args):
            words = shlex.split(command)
            if any(w in ("apt-get", "apt", "conda", "mamba", "micromamba", "uv") for w in words):
                pytest.fail(f"Containerfile installs outside pyproject.toml: RUN {args}")
            if "pip" in words or any(w.endswith("/pip") for w in words):
                installs.append(words)
    assert installs == [["pip", "install", "."]], f"Containerfile pip commands: {installs}; expected one `pip install .`"
