"""Comparing two record sets (analysis.provenance): runs paired by path, every compared number
identical, moved within seed noise or beyond it, the environment fields that differ, runs in one set
only; tested on synthetic records with known numbers. And the record's environment names the CPU and
torch's build."""

from __future__ import annotations

import pytest

from analysis import provenance
from make_records import make_record, write_record

# er: three seeds whose last accuracies spread by a std of 0.05
BASE = {0: 0.50, 1: 0.55, 2: 0.60}


def _matrix(last: float):
    return [[0.9, 0.0], [last, last]]  # last accuracy = last


def _write(root, method, seed, last, cpu="CPU A", budget=1000):
    record = make_record(method, "mnist5k", seed, _matrix(last), budget_bytes=budget)
    record["environment"].update({"git_revision": "a" * 40, "cpu": {"model": cpu, "torch_capability": "AVX2"}})
    return write_record(root, record)


@pytest.fixture
def sets(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for seed, last in BASE.items():
        _write(a, "er", seed, last)
        _write(a, "finetune", seed, 0.2 + seed / 100, budget=None)
    _write(b, "er", 0, BASE[0])                       # bit-identical
    _write(b, "er", 1, BASE[1] + 0.01, cpu="CPU B")   # moved within noise (std 0.05)
    _write(b, "er", 2, BASE[2] + 0.30, cpu="CPU B")   # moved beyond 2 x noise
    _write(b, "finetune", 0, 0.2, budget=None)
    _write(b, "finetune", 1, 0.2 + 1 / 100, budget=None)
    _write(b, "icarl", 0, 0.5)                        # only in B
    return a, b


def test_pairs_by_path_and_tells_identical_noise_and_beyond(sets):
    a, b = (provenance.load_set(p) for p in sets)
    result = provenance.compare(a, b)
    assert result["paired"] == 5
    assert result["only_a"] == ["mnist5k/cil/finetune/none/seed2"] and result["only_b"] == ["mnist5k/cil/icarl/1000B/seed0"]
    last = {r["run"]: r for r in result["rows"] if r["metric"] == "last_acc_task"}
    assert last["mnist5k/cil/er/1000B/seed0"]["verdict"] == provenance.IDENTICAL
    assert last["mnist5k/cil/er/1000B/seed1"]["verdict"] == provenance.WITHIN
    beyond = last["mnist5k/cil/er/1000B/seed2"]
    assert beyond["verdict"] == provenance.BEYOND and beyond["difference"] == pytest.approx(0.30)
    assert beyond["noise_a"] == pytest.approx(0.05)
    assert last["mnist5k/cil/finetune/none/seed1"]["verdict"] == provenance.IDENTICAL
    charged = [r for r in result["rows"] if r["metric"] == "charged_bytes"]
    assert {r["verdict"] for r in charged} == {provenance.IDENTICAL}
    env = {(e["run"], e["field"]): (e["a"], e["b"]) for e in result["environment"]}
    assert env == {("mnist5k/cil/er/1000B/seed1", "cpu_model"): ("CPU A", "CPU B"),
                   ("mnist5k/cil/er/1000B/seed2", "cpu_model"): ("CPU A", "CPU B")}


def test_seed_noise_is_the_std_over_seeds_of_the_runs_cell(sets):
    a = provenance.load_set(sets[0])
    noise = provenance.seed_noise(a, ("summary", "last_acc_task"))
    assert noise["mnist5k/cil/er/1000B"] == pytest.approx(0.05)
    one = {k: v for k, v in a.items() if k.endswith("seed0")}
    assert all(v != v for v in provenance.seed_noise(one, ("summary", "last_acc_task")).values())  # NaN: one seed
    assert provenance.verdict(0.5, 0.6, float("nan")) == provenance.NO_NOISE
    assert provenance.verdict(0.5, 0.5, float("nan")) == provenance.IDENTICAL
    assert provenance.verdict(0.5, 0.6, 0.049) == provenance.BEYOND and provenance.verdict(0.5, 0.6, 0.05) == provenance.WITHIN


def test_report_and_exit_status(sets, tmp_path, capsys):
    a, b = sets
    assert provenance.main([str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "5 run(s) in both sets; 1 only in A, 1 only in B" in text
    assert "beyond seed noise (> 2 x the std over seeds of the run's cell in A): " in text
    assert text.index("beyond noise |") < text.index("within noise |")  # the moves that matter come first
    assert "| cpu_model | CPU A | CPU B | 2 |" in text
    assert provenance.main([str(a), str(b), "--strict", "--out", str(tmp_path / "p.md")]) == 1
    assert (tmp_path / "p.md").read_text().startswith("# Record sets compared")
    assert provenance.main([str(a), str(a), "--strict"]) == 0
    assert "Every compared number is bit-identical." in capsys.readouterr().out


def test_bad_input_is_one_line_naming_what_to_give(tmp_path, sets):
    with pytest.raises(SystemExit, match="no such folder of run records"):
        provenance.main([str(tmp_path / "nowhere"), str(sets[1])])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no metrics.json below it"):
        provenance.load_set(tmp_path / "empty")
    broken = sets[0] / "mnist5k/cil/er/1000B/seed0/metrics.json"
    broken.write_text("{not json")
    with pytest.raises(SystemExit, match="not a readable run record"):
        provenance.load_set(sets[0])


def test_the_record_environment_names_the_cpu_and_torchs_build():
    import jsonschema
    import torch

    from braincl.record import environment, schema

    env = environment(torch.device("cpu"))
    assert env["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu"]["machine"] and env["torch_build"]["version"] == torch.__version__
    assert env["torch_build"]["cuda"] == torch.version.cuda
    assert any("MKL" in line or "OpenMP" in line or "GCC" in line for line in env["torch_build"]["libraries"])
    jsonschema.validate(env, schema()["properties"]["environment"])
