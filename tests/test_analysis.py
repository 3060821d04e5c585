"""The analysis package on synthetic run records with known numbers: tables show exactly those
numbers (means, sample stds, seed counts, best in bold, paper numbers beside ours), every declared
figure and table is written, and bad records are named without hiding the good ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import outputs
from analysis.load import RecordLoadError, load_results
from analysis.tables import all_tables, classwise_table, forgetting_table, main_table, robustness_table, unknown_table
from braincl.units import parse_bytes
from make_records import attention_entries, compute_section, make_record, write_record

ROOT = Path(__file__).resolve().parents[1]
B280 = parse_bytes("280MB")


def shifted(R, d):
    return [[None if v is None else v + d for v in row] for row in R]


# Hand-computed: equal test counts, so A_1 = R[0,0], A_2 = mean(R[1,:]).
#   braincl: A = (0.8, 0.8) + d, d in {0, .02, .04} -> avg = last = 82.0 ± 2.0; forgetting 10, BWT -10
#   er:      A = (0.9, 0.6) + d, d in {0, .01, .02} -> avg 76.0 ± 1.0, last 61.0 ± 1.0; forgetting 60
#   joint:   A = (1.0, 0.95)                         -> avg 97.5, last 95.0 (upper bound, never bold)
RUNS = {
    "braincl": ([[0.8, None], [0.7, 0.9]], (0.0, 0.02, 0.04)),
    "er": ([[0.9, None], [0.3, 0.9]], (0.0, 0.01, 0.02)),
    "joint": ([[1.0, None], [0.95, 0.95]], (0.0, 0.0, 0.0)),
}


@pytest.fixture
def runs_dir(tmp_path):
    root = tmp_path / "runs"
    for method, (R, deltas) in RUNS.items():
        for seed, d in enumerate(deltas):
            # the shape braincl/protocols/covariate_shift.py writes (evaluation only: still a main run)
            protocols = {"covariate_shift": {"severities": [1, 3], "accuracy": {"noise": [0.6, 0.2], "blur": [0.4, 0.4]},
                                             "clean": 0.9}} if method != "joint" else {}
            write_record(root, make_record(
                method, "imagenet100", seed, shifted(R, d), budget_bytes=B280,
                per_class=[[0.9, 0.8], [0.5, 1.0, 0.75, 0.75]], spectrum=[0.6, 0.3, 0.1, 0.0],
                attention=attention_entries(2, value=0.5 + 0.1 * seed), protocols=protocols,
                compute=compute_section(2, flops_per_task=10**9 * (seed + 1), backbone_per_task=1000), epochs=4))
            # the same run at twice the training (workflow target training_length): not a main run
            write_record(root, make_record(
                method, "imagenet100", seed, shifted(R, d - 0.01), budget_bytes=B280, variant="ep8", epochs=8,
                compute=compute_section(2, flops_per_task=2 * 10**9 * (seed + 1), backbone_per_task=2000)))
            if method != "joint":  # held-out classes change the scenario: a separate run, not in the main table
                write_record(root, make_record(
                    method, "imagenet100", seed, [[0.1, None], [0.1, 0.1]], budget_bytes=B280, protocol="unknown",
                    protocols={"unknown_classes": {"auroc_msp": 0.8 + 0.05 * seed, "auroc_energy": 0.7}}))
    # imbalanced test sets: sample- and task-weighted accuracy differ
    write_record(root, make_record("er", "bloodmnist", 0, [[0.8, None], [0.6, 1.0]], counts=[10, 30], budget_bytes=1000))
    # a long-tailed run
    write_record(root, make_record("er", "imagenet100", 0, [[0.5, None], [0.5, 0.5]], budget_bytes=B280,
                                   protocol="longtail", protocols={"long_tail": {"imbalance_ratio": 10}}))
    return root


def cell(table, row, col):
    return table.cells.loc[row, col], bool(table.bold.loc[row, col])


def test_main_table_shows_means_stds_seeds_paper_and_bold(runs_dir):
    t = main_table(load_results(runs_dir))
    assert cell(t, ("280.00 MB", "braincl"), "imagenet100 avg") == ("82.0 ± 2.0 (n=3) [paper 78.7, Δ +3.3]", True)
    assert cell(t, ("280.00 MB", "braincl"), "imagenet100 last") == ("82.0 ± 2.0 (n=3) [paper 74.2, Δ +7.8]", True)
    assert cell(t, ("280.00 MB", "er"), "imagenet100 avg") == ("76.0 ± 1.0 (n=3)", False)
    assert cell(t, ("280.00 MB", "er"), "imagenet100 last") == ("61.0 ± 1.0 (n=3)", False)
    assert cell(t, ("280.00 MB", "joint"), "imagenet100 avg") == ("97.5 ± 0.0 (n=3)", False)  # upper bound
    assert "sample-weighted" in t.caption
    md, tex = t.markdown(), t.latex()
    assert "**82.0 ± 2.0 (n=3) [paper 78.7, Δ +3.3]**" in md
    assert r"\textbf{82.0 $\pm$ 2.0 (n=3) [paper 78.7, $\Delta$ +3.3]}" in tex
    num = t.numbers.set_index(["dataset", "method", "metric"])
    assert num.loc[("imagenet100", "braincl", "avg_acc"), "mean"] == pytest.approx(0.82)
    assert num.loc[("imagenet100", "braincl", "avg_acc"), "std"] == pytest.approx(0.02)
    assert num.loc[("imagenet100", "braincl", "avg_acc"), "n"] == 3
    assert num.loc[("imagenet100", "braincl", "avg_acc"), "diff"] == pytest.approx(0.82 - 0.787)
    # the long-tailed run is not part of the main table: er keeps 3 seeds
    assert num.loc[("imagenet100", "er", "last_acc"), "n"] == 3


def test_weighting_is_chosen_and_stated(runs_dir):
    res = load_results(runs_dir)
    # bloodmnist: A_2 sample = (0.6*10 + 1.0*30)/40 = 0.9, task = 0.8; avg = (0.8 + A_2)/2
    sample, task = main_table(res, "sample"), main_table(res, "task")
    assert sample.cells.loc[("1.00 KB", "er"), "bloodmnist avg"] == "85.0 (n=1)"
    assert task.cells.loc[("1.00 KB", "er"), "bloodmnist avg"] == "80.0 (n=1)"
    assert "task-weighted" in task.caption and "sample-weighted" not in task.caption


def test_forgetting_unknown_classwise_and_robustness_tables(runs_dir):
    res = load_results(runs_dir)
    f = forgetting_table(res)
    assert cell(f, ("280.00 MB", "braincl"), "imagenet100 forgetting") == ("10.0 ± 0.0 (n=3)", True)
    assert cell(f, ("280.00 MB", "er"), "imagenet100 forgetting") == ("60.0 ± 0.0 (n=3)", False)
    assert cell(f, ("280.00 MB", "braincl"), "imagenet100 BWT") == ("-10.0 ± 0.0 (n=3)", True)
    u = unknown_table(res)
    assert list(u.cells.columns) == ["imagenet100 MSP", "imagenet100 energy"]
    assert cell(u, ("280.00 MB", "braincl"), "imagenet100 MSP") == ("85.0 ± 5.0 (n=3)", True)
    assert cell(u, ("280.00 MB", "er"), "imagenet100 energy")[0] == "70.0 ± 0.0 (n=3)"
    c = classwise_table(res)
    # last-task per-class accuracies (0.5, 1.0, 0.75, 0.75): population std 17.68, range 50
    assert c.cells.loc[("280.00 MB", "braincl"), "imagenet100 std"] == "17.7 ± 0.0 (n=3)"
    assert c.cells.loc[("280.00 MB", "braincl"), "imagenet100 max−min"] == "50.0 ± 0.0 (n=3)"
    r = robustness_table(res)
    # severity 1: mean(0.6, 0.4) = 50; severity 3: mean(0.2, 0.4) = 30; clean 90
    assert r.cells.loc[("280.00 MB", "braincl"), "imagenet100 shift s1"] == "50.0 ± 0.0 (n=3)"
    assert r.cells.loc[("280.00 MB", "braincl"), "imagenet100 shift s3"] == "30.0 ± 0.0 (n=3)"
    assert r.cells.loc[("280.00 MB", "braincl"), "imagenet100 clean"] == "90.0 ± 0.0 (n=3)"
    assert r.cells.loc[("280.00 MB", "er"), "imagenet100 long-tail ρ=10 avg"] == "50.0 (n=1)"


def test_loader_frames_come_from_the_record_not_the_path(tmp_path):
    rec = make_record("er", "mnist5k", 7, [[0.5, None], [0.25, 0.75]], budget_bytes=500)
    path = tmp_path / "runs" / "wrong" / "place" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))
    res = load_results(tmp_path / "runs")
    row = res.runs.iloc[0]
    assert (row["dataset"], row["method"], row["seed"], row["budget_bytes"]) == ("mnist5k", "er", 7, 500)
    assert res.curves["acc_sample"].tolist() == pytest.approx([0.5, 0.5])
    assert bool(row["main"])


def test_runs_with_held_out_classes_are_not_main_runs(tmp_path):
    # labelled "cil" but trained without the held-out classes: a different scenario
    write_record(tmp_path, make_record("er", "mnist5k", 0, [[0.5]], protocols={"unknown_classes": {"auroc_msp": 0.6}}))
    res = load_results(tmp_path)
    assert not res.runs["main"].any() and main_table(res).empty
    assert unknown_table(res).cells.iloc[0, 0] == "60.0 (n=1)"


def test_v1_records_still_load(tmp_path):
    write_record(tmp_path, make_record("er", "mnist5k", 0, [[0.5]], schema_version=1))
    res = load_results(tmp_path)
    assert not res.errors and res.runs["schema_version"].tolist() == [1]


def test_bad_files_are_named_and_do_not_hide_good_ones(runs_dir, capsys):
    truncated = runs_dir / "broken" / "metrics.json"
    truncated.parent.mkdir()
    truncated.write_text('{"schema_version": 2, "run": ')
    rec = make_record("er", "mnist5k", 3, [[0.5]])
    del rec["summary"]
    no_summary = runs_dir / "nosummary" / "metrics.json"
    no_summary.parent.mkdir()
    no_summary.write_text(json.dumps(rec))
    res = load_results(runs_dir)
    bad = {e.path: e.message for e in res.errors}
    assert set(bad) == {truncated, no_summary}
    assert "not valid JSON" in bad[truncated]
    assert "summary" in bad[no_summary] and "schema" in bad[no_summary]
    assert len(res.runs) == 26  # 9 + 9 at 8 epochs + 6 unknown-class + bloodmnist + long-tail: all good files loaded
    with pytest.raises(RecordLoadError) as err:
        load_results(runs_dir, strict=True)
    assert str(truncated) in str(err.value) and str(no_summary) in str(err.value)


def test_duplicate_runs_are_reported(tmp_path):
    rec = make_record("er", "mnist5k", 0, [[0.5]])
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "metrics.json").write_text(json.dumps(rec))
    res = load_results(tmp_path)
    assert len(res.runs) == 1 and len(res.errors) == 1 and "same run" in res.errors[0].message


def test_no_data_writes_notes(tmp_path):
    res = load_results(tmp_path / "nothing")
    for table in all_tables(res):
        assert table.empty
        paths = table.write(tmp_path / "tables")
        assert "no data" in paths[0].read_text()


@pytest.mark.slow
def test_cli_writes_every_declared_output_without_torch(runs_dir, tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    pd.DataFrame({"method": ["braincl"] * 3 + ["jpeg"] * 2, "lambda": [1e-3, 1e-2, 1e-1, 50, 90],
                  "bytes_per_sample": [100, 200, 400, 300, 900], "psnr_db": [20, 24, 28, 22, 30]}
                 ).to_csv(bench / "rate_distortion.csv", index=False)
    (runs_dir / "junk").mkdir()
    (runs_dir / "junk" / "metrics.json").write_text("[]")
    out = tmp_path / "out"
    code = ("import sys; from analysis.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'analysis imported torch'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "--runs", str(runs_dir), "--benchmarks", str(bench),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for path in outputs.table_paths(out) + outputs.figure_paths(out):
        assert path.is_file() and path.stat().st_size > 0, path
    assert "placeholder" not in proc.stdout  # every figure had data
    assert f"bad record: {runs_dir / 'junk' / 'metrics.json'}" in proc.stderr
    for figure in outputs.FIGURES:
        assert outputs.caption_path(figure).read_text().strip()


def test_rate_distortion_without_columns_is_skipped_with_a_note(tmp_path):
    from analysis.figures import rate_distortion

    (tmp_path / "rate_distortion.csv").write_text("codec,quality\njpeg,50\n")
    fig, note = rate_distortion(tmp_path)
    assert "bytes_per_sample" in note and "psnr_db" in note
    _, note = rate_distortion(tmp_path / "missing")
    assert "not found" in note


def test_protocol_blocks_are_read_defensively():
    from analysis.load import covariate_rows, unknown_rows

    rows = covariate_rows({"accuracy": {"noise": {"2": 0.5, "4": "n/a"}}, "results": [{"corruption": "blur", "severity": 1,
                                                                                        "accuracy": 0.25}]})
    assert rows == [{"corruption": "noise", "severity": 2, "accuracy": 0.5},
                    {"corruption": "blur", "severity": 1, "accuracy": 0.25}]
    assert unknown_rows({"auroc": {"msp": 0.9}, "auroc_energy": 0.8, "held_out_classes": [1]}) == [
        {"score": "msp", "auroc": 0.9}, {"score": "energy", "auroc": 0.8}]


def test_a_method_keeps_its_colour_in_every_figure():
    from analysis.style import palette

    assert palette(["er", "braincl"])["er"] == palette(["joint", "er", "newmethod"])["er"]
    assert len(set(palette(["braincl", "er", "finetune", "joint"]).values())) == 4
