"""The second training length: the ranking functions and the table and figure that
compare the default grid with its longer-trained copy, on synthetic records with known numbers."""

import math

import pytest
from make_records import compute_section, make_record, write_record

from analysis.load import load_results
from analysis.stats import kendall_tau, order_flips, ranking
from analysis.variants import ablations_table, training_length_table


def test_ranking_orders_by_mean_and_breaks_ties_by_name():
    assert ranking({"b": [0.5, 0.7], "a": [0.6], "c": [0.9, 0.1], "d": [float("nan")]}) == ["a", "b", "c"]


def test_order_flips_names_each_swapped_pair_and_whether_it_is_beyond_noise():
    before = {"x": [0.90, 0.91, 0.92], "y": [0.80, 0.81, 0.82], "z": [0.70, 0.75, 0.80]}
    after = {"x": [0.70, 0.71, 0.72], "y": [0.85, 0.86, 0.87], "z": [0.60, 0.90, 0.75]}
    flips = order_flips(before, after)
    assert [(f.first, f.second) for f in flips] == [("x", "y"), ("x", "z")]
    xy, xz = flips
    assert xy.resolved                                 # 10 and 15 pp apart at every seed: paired, no doubt
    assert xy.before.mean == pytest.approx(0.10) and xy.after.mean == pytest.approx(0.15)
    assert not xz.resolved                             # z - x at 8 epochs: -10, +19, +3 pp by seed
    assert order_flips(before, before) == []


def test_kendall_tau_from_flips():
    assert kendall_tau(4, 0) == 1.0
    assert kendall_tau(4, 6) == -1.0
    assert kendall_tau(5, 1) == pytest.approx(0.8)
    assert math.isnan(kendall_tau(1, 0))


def _write(root, method, seed, last, epochs, budget=1000, variant=None, backbone=100):
    # a 2-task matrix whose last accuracy (sample-weighted, equal task sizes) is `last`
    write_record(root, make_record(method, "mnist5k", seed, [[1.0, None], [last, last]], budget_bytes=budget,
                                   variant=variant, compute=compute_section(2, 10**6, backbone), epochs=epochs))


@pytest.fixture
def two_lengths(tmp_path):
    # At 4 epochs: a (0.80) > b (0.70) > c (0.60). At 8 epochs b (0.90) passes a (0.82); c stays last.
    lasts = {"a": (0.80, 0.82), "b": (0.70, 0.90), "c": (0.60, 0.61)}
    for method, (short, long_) in lasts.items():
        for seed, jitter in enumerate((-0.01, 0.0, 0.01)):
            _write(tmp_path, method, seed, short + jitter, 4)
            _write(tmp_path, method, seed, long_ + jitter, 8, variant="ep8", backbone=200)
    for seed in range(3):  # a bound without a budget; an ablation and a budget run at one length only,
        _write(tmp_path, "joint", seed, 0.95, 4, budget=None)  # which stay out of the table and figure
        _write(tmp_path, "joint", seed, 0.97, 8, budget=None, variant="ep8")
        _write(tmp_path, "a", seed, 0.10, 4, variant="raw")
        _write(tmp_path, "a", seed, 0.85, 4, budget=5000)
    return load_results(tmp_path, strict=True)


def test_table_compares_each_method_at_both_lengths_with_ranks_and_compute(two_lengths):
    t = training_length_table(two_lengths)
    assert not t.empty
    assert list(t.cells.columns) == ["last, 4 ep", "last, 8 ep", "Δ last", "avg, 4 ep", "avg, 8 ep", "rank (last)",
                                     "backbone k/task"]
    rows = {idx[1:]: row for idx, row in t.cells.iterrows()}
    assert set(rows) == {("1.00 KB", "ep8", m) for m in "abc"} | {("no budget", "ep8", "joint")}
    b = rows[("1.00 KB", "ep8", "b")]
    assert b["last, 4 ep"] == "70.0 ± 1.0 (n=3)" and b["last, 8 ep"] == "90.0 ± 1.0 (n=3)"
    assert b["Δ last"] == "+20.0 [+20.0, +20.0] (n=3)"  # paired: the same +20 at every seed
    assert b["rank (last)"] == "2 → 1" and rows[("1.00 KB", "ep8", "a")]["rank (last)"] == "1 → 2"
    assert rows[("1.00 KB", "ep8", "c")]["rank (last)"] == "3 → 3"
    assert b["backbone k/task"] == "0.10 → 0.20"
    assert rows[("no budget", "ep8", "joint")]["rank (last)"] == "–"
    note = t.notes[0]
    assert note.startswith("mnist5k, 1.00 KB: 4 ep a > b > c; 8 ep b > a > c; Kendall tau +0.33")
    assert "b passes a (a − b: +10.0 → -8.0 pp, beyond noise)" in note
    ranks = t.numbers[(t.numbers["metric"] == "last_acc_sample") & (t.numbers["method"] == "b")]
    assert sorted(zip(ranks["variant"], ranks["rank_last"])) == [("", 2), ("ep8", 1)]


def test_table_without_the_longer_runs_says_how_to_make_them(tmp_path):
    _write(tmp_path, "a", 0, 0.8, 4)
    t = training_length_table(load_results(tmp_path))
    assert t.empty and "snakemake --cores 2 training_length" in t.note


def test_figure_draws_both_lengths(two_lengths):
    from analysis.figures import training_length

    fig, note = training_length(two_lengths)
    assert note is None
    panels = {a.get_title(): a for a in fig.axes if a.get_visible() and a.get_title()}
    assert sorted(panels) == ["1 KB", "no budget"]  # one data set: panels are named by budget alone
    ax = panels["1 KB"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "8"]
    assert len(ax.containers) == 3  # one errorbar line per budgeted method


def test_the_longer_schedule_is_not_listed_as_an_ablation(tmp_path):
    for seed in range(2):
        _write(tmp_path, "braincl", seed, 0.8, 4)
        _write(tmp_path, "braincl", seed, 0.7, 4, variant="raw")
        _write(tmp_path, "braincl", seed, 0.9, 8, variant="ep8")
    res = load_results(tmp_path, strict=True)
    assert {idx[-1] for idx in ablations_table(res).cells.index} == {"full", "raw"}
    assert {idx[-1] for idx in training_length_table(res).cells.index} == {"braincl"}


def test_figure_without_a_matching_default_run_is_a_placeholder(tmp_path):
    from analysis.figures import training_length

    _write(tmp_path, "a", 0, 0.8, 8, variant="ep8")
    _write(tmp_path, "b", 0, 0.8, 4, budget=5000)
    fig, note = training_length(load_results(tmp_path))
    assert note == "no method and budget ran at both training lengths"
