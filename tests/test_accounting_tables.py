"""The main table shows the bytes a distillation method's teacher takes beside the budget."""

from __future__ import annotations

from analysis.load import load_results
from analysis.tables import main_table
from make_records import breakdown, make_record, write_record


def records(tmp_path, teacher: int):
    for seed in range(2):
        for method in ("icarl", "er"):
            record = make_record(method, "mnist5k", seed, [[0.9, None], [0.5, 0.8]], budget_bytes=60_000)
            if method == "icarl" and teacher:
                final = breakdown(60_000, 60_000, teacher=teacher)
                record["memory"]["final"] = record["memory"]["per_task"][-1] = final
            write_record(tmp_path / "runs", record)
    return load_results(tmp_path / "runs")


def test_teacher_bytes_have_their_own_column(tmp_path):
    table = main_table(records(tmp_path, teacher=710_000))
    column = "mnist5k teacher KB"
    assert table.cells.loc[("60.00 KB", "icarl"), column] == "710"
    assert table.cells.loc[("60.00 KB", "er"), column] == "–"
    assert not table.bold[column].any() and "not charged" in table.caption


def test_no_teacher_no_column(tmp_path):
    table = main_table(records(tmp_path, teacher=0))
    assert not any("teacher" in c for c in table.cells.columns)
