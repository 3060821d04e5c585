"""Numbers as researchers write them (``1e-3``, ``1E-3``, ``-2e4``, ``5e+2``, ``.5``, ``1_000``) are
numbers in an experiment file, in ``--set`` and in the workflow config, and give the same resolved
config and record as their decimal spelling; strings stay strings; budgets keep their own parser."""

import json
import re

import pytest
import yaml

from braincl import config, yamlio
from braincl.cli import main
from braincl.workflow_config import WorkflowConfigError, budget_problem, merged
from tests.conftest import tiny_overrides
from tests.test_workflow import MICRO, snakemake

# the four spellings researchers write, each in a field that takes it, and its decimal spelling
SPELLED = {"train.optimizer.lr": ("1e-3", 0.001), "train.optimizer.weight_decay": ("1E-3", 0.001),
           "dataset.transforms.normalize.mean": ("[-2e4]", [-20000.0]),
           "dataset.transforms.normalize.std": ("[5e+2]", [500.0])}
# for whole runs: values away from the defaults that keep the inputs in range (a mean of -2e4 would not)
RUN_SPELLED = {"train.optimizer.lr": ("2e-2", 0.02), "train.optimizer.weight_decay": ("1E-3", 0.001),
               "train.optimizer.momentum": ("5e-1", 0.5), "dataset.transforms.normalize.std": ("[2.5e-1]", [0.25])}
TINY = tiny_overrides("finetune", None)


@pytest.mark.parametrize("text,value", [
    ("1e-3", 0.001), ("1E-3", 0.001), ("-2e4", -20000.0), ("5e+2", 500.0), (".5", 0.5), ("-.5e1", -5.0),
    ("1_000", 1000), ("1_000.5", 1000.5), ("3.", 3.0), ("1.0e-3", 0.001), ("+7", 7), ("010", 10),
    ("0x1f", 31), ("0o17", 15), ("0b101", 5), ("-.inf", float("-inf")),
])
def test_yaml_1_2_numbers(text, value):
    parsed = yamlio.loads(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["'1e-3'", '"5e+2"', "60KB", "1e5x", "er", "1.0.0", "results/1e3", "v1e3",
                                  "1:30", "e5", "1e", "_1", "1.5GiB"])
def test_strings_stay_strings(text):
    assert isinstance(yamlio.loads(text), str)


def test_booleans_nulls_and_dates_are_read_as_before():
    text = "a: yes\nb: off\nc: null\nd: ~\ne: 2024-01-02\nf: true\n"
    assert yamlio.loads(text) == yaml.safe_load(text)


def _experiment(tmp_path, spelled: bool, values=SPELLED):
    """An experiment file holding ``values`` (dotted key -> (spelled, decimal)) as nested YAML."""
    tree: dict = {}
    for key, (text, value) in values.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = text if spelled else repr(value)

    def dump(node, indent=""):
        return "".join(f"{indent}{k}:\n{dump(v, indent + '  ')}" if isinstance(v, dict) else f"{indent}{k}: {v}\n"
                       for k, v in node.items())

    path = tmp_path / ("spelled.yaml" if spelled else "decimal.yaml")
    path.write_text(dump(tree))
    return path


def test_spelled_numbers_resolve_like_decimals(tmp_path):
    decimal = config.load(_experiment(tmp_path, False), TINY)
    from_file = config.load(_experiment(tmp_path, True), TINY)
    from_set = config.load(None, TINY + [f"{k}={spelled}" for k, (spelled, _) in SPELLED.items()])
    assert from_file == decimal == from_set
    assert isinstance(from_set["train"]["optimizer"]["lr"], float)
    for key, (_, value) in SPELLED.items():
        assert config.get(from_set, key) == value


def test_spelled_method_params_pass_their_types(tmp_path):
    """BrainCL's codec learning rates written as ``3e-3`` / ``1e-2``, as in papers."""
    cfg = config.load(None, ["method.name=braincl", "memory.budget=60KB", "method.params.codec_lr=3e-3",
                             "method.params.codec_aux_lr=1e-2", "method.params.lambda=1e-3"])
    params = cfg["method"]["params"]
    assert (params["codec_lr"], params["codec_aux_lr"], params["lambda"]) == (0.003, 0.01, 0.001)


def test_run_and_validate_agree_on_spelled_numbers(tmp_path, capsys):
    """The same record from the spelled file, the decimal file and ``--set``; ``validate`` prints
    the config each run records."""
    sets = sum((["--set", s] for s in TINY), [])
    spelled_sets = sum((["--set", f"{k}={v}"] for k, (v, _) in RUN_SPELLED.items()), [])
    runs = {"decimal": [str(_experiment(tmp_path, False, RUN_SPELLED)), *sets],
            "spelled_file": [str(_experiment(tmp_path, True, RUN_SPELLED)), *sets],
            "spelled_set": [str(tmp_path / "empty.yaml"), *sets, *spelled_sets]}
    (tmp_path / "empty.yaml").write_text("{}\n")
    records, validated = {}, {}
    for name, args in runs.items():
        assert main(["validate", *args]) == 0
        validated[name] = yamlio.loads(capsys.readouterr().out)
        rc = main(["run", *args, "--out", str(tmp_path / name)])
        assert rc == 0, capsys.readouterr().err
        capsys.readouterr()
        records[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    base = records["decimal"]
    for key, (_, value) in RUN_SPELLED.items():
        assert config.get(base["config"], key) == value
    for name, record in records.items():
        assert record["config"] == validated[name] == base["config"]
        assert record["run"]["config_fingerprint"] == base["run"]["config_fingerprint"]
        assert record["accuracy"] == base["accuracy"] and record["summary"] == base["summary"]


def test_a_float_where_an_integer_is_expected_names_the_whole_number():
    with pytest.raises(config.ConfigError, match=r"train\.epochs: 20\.0 is not of type 'integer'; write the whole number 20"):
        config.load(None, TINY + ["train.epochs=2e1"])
    with pytest.raises(config.ConfigError, match=r"method\.params\.N: 16\.0 is not an integer .*whole number 16"):
        config.load(None, ["method.name=braincl", "memory.budget=60KB", "method.params.N=1.6e1"])
    with pytest.raises(config.ConfigError, match=r"train\.epochs: 2\.5 is not of type 'integer'$"):
        config.load(None, TINY + ["train.epochs=2.5"])


def test_budgets_keep_their_own_parser():
    for budget in ("60KB", "1e5", "6e4", "60000"):
        cfg = config.load(None, tiny_overrides("er", budget))
        assert cfg["memory"]["budget"] in ("60KB", 100000.0, 60000.0, 60000)
    with pytest.raises(config.ConfigError, match="negative"):
        config.load(None, tiny_overrides("er", "-6e4"))


# ---------------------------------------------------------------------- the workflow config
def test_workflow_config_is_read_with_yaml_1_2_numbers(tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text("grid: [{dataset: a}]\nresources: {train: {threads: 1}}\n")
    mine = tmp_path / "mine.yaml"
    mine.write_text("grid:\n  - {dataset: b, set: {train.optimizer.lr: 1e-3, method.params.lambda: 5e+2}}\n")
    cfg = merged([own], [mine], {"resources": {"train": {"mem_mb": 2000}}})
    assert cfg["grid"] == [{"dataset": "b", "set": {"train.optimizer.lr": 0.001, "method.params.lambda": 500.0}}]
    assert cfg["resources"] == {"train": {"threads": 1, "mem_mb": 2000}}
    assert merged([own], [mine], replace_own=True)["grid"][0]["dataset"] == "b"
    assert "resources" not in merged([own], [mine], replace_own=True)


def test_workflow_budgets_are_named_folders():
    assert budget_problem("60KB") is None and budget_problem("157200") is None
    assert "write it as digits with a unit, e.g. 100KB" in budget_problem(1e5)
    assert "e.g. 100KB" in budget_problem("1e5")
    assert "must not be negative" in budget_problem("-10KB")


def test_workflow_config_duplicate_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: []\nresources: {train: {threads: 1, threads: 2}}\n")
    with pytest.raises(WorkflowConfigError, match=r"bad\.yaml is not valid YAML: line 2.*'threads' is given twice"):
        merged([], [bad])


def _commands(out: str) -> list[str]:
    return sorted(re.sub(r"\s+", " ", line) for line in out.splitlines() if "braincl.cli run" in line)


def test_workflow_set_values_reach_the_runs_as_numbers(tmp_path):
    """The grid's ``set:`` values, spelled or decimal, become the same ``--set`` of the same jobs
    (after the parse-time validation of every run's config accepted them)."""
    micro = yaml.safe_load(MICRO.read_text())
    commands = {}
    for name, pick in (("spelled", 0), ("decimal", 1)):
        text = MICRO.read_text().replace(
            "      train.epochs: 1\n",
            "      train.epochs: 1\n" + "".join(f"      {k}: {v[pick]}\n" for k, v in SPELLED.items()))
        assert yaml.safe_load(text)["grid"][0]["set"] != micro["grid"][0]["set"]
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        out = snakemake("all", "-n", "-p", "--cores", "1", "--configfile", str(path), cwd=tmp_path)
        commands[name] = _commands(out.stdout + out.stderr)
    assert commands["spelled"] == commands["decimal"] and len(commands["decimal"]) == 2
    assert all("--set 'train.optimizer.lr=0.001'" in c and "--set 'dataset.transforms.normalize.mean=[-20000.0]'" in c
               for c in commands["spelled"])


def test_workflow_schema_takes_integers_strictly(tmp_path):
    """A seed ``1e0`` is the float 1.0: JSON Schema alone would take it as an integer and the run
    folder would be seed1.0."""
    from pathlib import Path

    from braincl.workflow_config import check

    schema = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
    good = merged([], [MICRO])
    check(good, schema)
    for where, value, words in ((("grid", 0, "seeds"), [1e0], "config grid.0.seeds.0: 1.0 is not of type 'integer'; "
                                 "write the whole number 1"),
                                (("resources", "train", "mem_mb"), 4e3, "resources.train.mem_mb: 4000.0")):
        bad = merged([], [MICRO])
        node = bad
        for part in where[:-1]:
            node = node[part]
        node[where[-1]] = value
        with pytest.raises(WorkflowConfigError, match=re.escape(words)):
            check(bad, schema)
