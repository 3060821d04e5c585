"""``braincl compare``: committed runs and tiny runs side by side, the config keys that differ, the
curve figure, and one-line refusals. Committed records are only read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from braincl.cli import main
from braincl.compare import CompareError, compare, config_differences, load_runs, run_labels

ROOT = Path(__file__).resolve().parents[1]
ER = ROOT / "results/runs/mnist5k/cil/er/300KB/seed0"
BRAINCL = ROOT / "results/runs/mnist5k/cil/braincl/300KB/seed0"


def _row(text: str, name: str) -> list[str]:
    """The cells of the printed row whose label is ``name``."""
    for line in text.splitlines():
        if line.startswith(name + "  "):
            return line[len(name):].split()
    raise AssertionError(f"no row {name!r} in\n{text}")


@pytest.mark.skipif(not (ER / "metrics.json").exists() or not (BRAINCL / "metrics.json").exists(),
                    reason="committed records absent")
def test_two_committed_runs(tmp_path, capsys):
    before = {p: p.stat().st_mtime_ns for p in (ER / "metrics.json", BRAINCL / "metrics.json")}
    figure = tmp_path / "curves.png"
    assert main(["compare", str(ER), str(BRAINCL / "metrics.json"), "--plot", str(figure)]) == 0
    text = capsys.readouterr().out
    records = [json.loads((p / "metrics.json").read_text()) for p in (ER, BRAINCL)]
    assert text.splitlines()[0].split() == ["er/300KB/seed0", "braincl/300KB/seed0"]
    assert _row(text, "method") == ["er", "braincl"]
    assert _row(text, "average accuracy (%, sample-weighted)") == [
        f"{100 * r['summary']['avg_acc_sample']:.2f}" for r in records]
    assert _row(text, "last accuracy (%, sample-weighted)") == [
        f"{100 * r['summary']['last_acc_sample']:.2f}" for r in records]
    assert _row(text, "forgetting (points)") == [f"{100 * r['summary']['forgetting']:.2f}" for r in records]
    assert _row(text, "memory charged (bytes)") == [f"{r['memory']['final']['charged_bytes']:,}" for r in records]
    assert _row(text, "training GFLOP") == [f"{r['compute']['training']['flops'] / 1e9:,.2f}" for r in records]
    assert _row(text, "backbone sample-updates") == [
        f"{r['compute']['training']['backbone_backward']:,}" for r in records]
    assert _row(text, "method.name") == ["er", "braincl"]
    assert _row(text, "method.params.lambda") == ["(absent)", str(records[1]["config"]["method"]["params"]["lambda"])]
    assert "seed  " not in text.split("config key that differs")[1]  # equal keys are not listed
    assert figure.stat().st_size > 0 and f"-> {figure}" in text
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_task_weighting_reads_the_records_task_weighted_numbers(capsys):
    if not (ER / "metrics.json").exists():
        pytest.skip("committed records absent")
    assert main(["compare", str(ER), "--weighting", "task"]) == 0
    text = capsys.readouterr().out
    record = json.loads((ER / "metrics.json").read_text())
    assert _row(text, "average accuracy (%, task-weighted)") == [f"{100 * record['summary']['avg_acc_task']:.2f}"]
    assert "config key" not in text  # one run: nothing to differ from


@pytest.mark.slow
def test_two_tiny_runs_differing_in_budget(run_tiny, tmp_path, capsys):
    a = run_tiny("er", "60KB", out=tmp_path / "er")
    b = run_tiny("er", "30KB", out=tmp_path / "er30", **{"train.optimizer.lr": 0.01})
    figure = tmp_path / "plots" / "er.pdf"
    assert main(["compare", str(tmp_path / "er"), str(tmp_path / "er30"), "--plot", str(figure)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["er", "er30"]
    assert _row(text, "memory.budget") == ["60KB", "30KB"]
    assert _row(text, "train.optimizer.lr") == ["0.05", "0.01"]
    diff_keys = {row[0] for row in config_differences([a["config"], b["config"]])}
    assert diff_keys == {"memory.budget", "train.optimizer.lr"}
    assert _row(text, "average accuracy (%, sample-weighted)") == [
        f"{100 * r['summary']['avg_acc_sample']:.2f}" for r in (a, b)]
    assert figure.read_bytes().startswith(b"%PDF")

    # the curves are the records' own accuracy after each task, one line per run
    runs, curves, _, _ = load_runs([str(tmp_path / "er"), str(tmp_path / "er30")])
    for i, record in enumerate((a, b)):
        got = curves[curves["run"] == i].sort_values("step")["acc_sample"].tolist()
        assert got == pytest.approx(record["summary"]["acc_per_step_sample"])

    # same identity (method, data set, budget, seed): a results tree would refuse it, a comparison not
    shutil.copytree(tmp_path / "er", tmp_path / "again")
    assert main(["compare", str(tmp_path / "er"), str(tmp_path / "again")]) == 0
    assert "configs: identical" in capsys.readouterr().out

    # a folder of runs: each run below it is one column
    assert main(["compare", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["again", "er", "er30"]


def test_labels_drop_the_shared_folders():
    files = [Path("/r/runs/m/cil/er/300KB/seed0/metrics.json"), Path("/r/runs/m/cil/icarl/300KB/seed0/metrics.json")]
    assert run_labels(files) == ["er/300KB/seed0", "icarl/300KB/seed0"]


@pytest.mark.parametrize("case", ["missing", "empty_folder", "not_a_record_name", "bad_json", "bad_schema", "bad_plot"])
def test_refusals_are_one_line(tmp_path, capsys, case):
    target = tmp_path / "run"
    args = [str(target)]
    words = [str(target)]
    if case == "empty_folder":
        target.mkdir()
        target.joinpath("checkpoint.pt").write_bytes(b"")
        words.append("holds no metrics.json")
    elif case == "not_a_record_name":
        target = tmp_path / "notes.json"
        target.write_text("{}")
        args, words = [str(target)], [str(target), "not a metrics.json"]
    elif case == "bad_json":
        target.mkdir()
        target.joinpath("metrics.json").write_text("{")
        words.append("not valid JSON")
    elif case == "bad_schema":
        target.mkdir()
        target.joinpath("metrics.json").write_text(json.dumps({"run": {}}))
        words += ["schema", "more"]
    elif case == "bad_plot":
        args += ["--plot", str(tmp_path / "curves.xyz")]
        words = ["--plot", ".xyz", ".png"]
    else:
        words.append("no such file or folder")
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("braincl: error: "), err
    for word in words:
        assert word in err[0], (word, err[0])
    with pytest.raises(CompareError):
        compare(args[:1], plot=args[2] if len(args) > 2 else None)
    assert not (tmp_path / "curves.xyz").exists()


def test_compare_help_imports_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys; from braincl.cli import main\n"
            "try: main(['compare', '--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('torch', 'compressai', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
