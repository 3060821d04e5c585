"""Every figure, rendered from the committed records (read-only) and from small synthetic records,
has a clean layout: no two visible texts overlap, no legend covers a text or data markers, and no
text falls outside the saved image (``analysis.style.layout_problems``, which measures every Text
and Legend artist with matplotlib's renderer). Two figures give a method the same colour, and the
checker itself finds the defects it is meant to find."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from analysis import figures, outputs, style
from analysis.load import load_results
from make_records import attention_entries, compute_section, make_record, write_record

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_RUNS = ROOT / "results" / "runs"
COMMITTED_BENCH = ROOT / "results" / "benchmarks"
LAYOUT_DPI = 60  # layout is measured in inches; a low dpi keeps the test fast

# Every known method, one variant of three of them, two budgets and runs without one: the largest
# legends and the most crowded panels the figures have to take.
SYNTHETIC_METHODS = ("braincl", "er", "derpp", "icarl", "jpeg_replay", "gen_replay", "bic", "wa", "lwf", "ewc",
                     "finetune", "joint")
NO_BUDGET = ("lwf", "ewc", "finetune", "joint")


@pytest.fixture(scope="module", autouse=True)
def paper_style():
    style.apply()
    plt.rcParams["figure.dpi"] = LAYOUT_DPI
    yield
    plt.rcdefaults()


def _synthetic(root: Path, bench: Path) -> None:
    T = 3
    for k, method in enumerate(SYNTHETIC_METHODS):
        budgets = [None] if method in NO_BUDGET else [60_000, 300_000]
        for budget in budgets:
            for seed in range(2):
                d = 0.01 * k + 0.02 * seed
                R = [[0.95 - d, None, None], [0.8 - d, 0.9, None], [0.7 - d, 0.75, 0.9 - d]]
                common = dict(budget_bytes=budget, compute=compute_section(T, 10**9 * (k + 1), 1000,
                                                                          10**8 if method == "braincl" else 0))
                write_record(root, make_record(
                    method, "mnist5k", seed, R, per_class=[[0.9, 0.8], [0.5, 1.0, 0.75, 0.75],
                                                          [0.4, 0.9, 0.6, 0.7, 0.95, 0.99]],
                    spectrum=[0.6, 0.3, 0.08, 0.02 - 0.001 * k], attention=attention_entries(T, value=0.3 + 0.05 * k),
                    protocols={"covariate_shift": {"severities": [1, 3, 5], "clean": 0.9 - d,
                                                   "accuracy": {"noise": [0.8 - d, 0.6, 0.3], "blur": [0.85, 0.7, 0.5]}}},
                    epochs=2, **common))
                write_record(root, make_record(method, "mnist5k", seed, R, variant="ep8", epochs=8, **common))
                if budget == 60_000:
                    write_record(root, make_record(method, "mnist5k", seed, R, protocol="longtail", epochs=2,
                                                   protocols={"long_tail": {"imbalance_ratio": 10}}, **common))
    for method in ("braincl", "er", "derpp"):  # variants (ablations, controls) get derived styles
        write_record(root, make_record(method, "mnist5k", 0, [[0.9]], budget_bytes=60_000, variant="raw"))
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "rate_distortion.csv").write_text(
        "method,setting,bytes_per_sample,psnr_db,lambda\nraw,uint8,786,inf,\n"
        "jpeg,quality=5,380,20.5,\njpeg,quality=50,498,29.2,\njpeg,quality=95,774,46.6,\n"
        "braincl_codec,lambda=0.001,90,21.5,0.001\nbraincl_codec,lambda=0.01,138,23.1,0.01\n"
        "braincl_codec,lambda=0.1,150,23.4,0.1\n")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    _synthetic(root / "runs", root / "bench")
    return load_results(root / "runs"), root / "bench"


@pytest.fixture(scope="module")
def committed():
    if not any(COMMITTED_RUNS.rglob("metrics.json")):
        pytest.skip(f"no committed records under {COMMITTED_RUNS}")
    res = load_results(COMMITTED_RUNS)
    assert not res.errors, res.errors
    return res, COMMITTED_BENCH


def _check(res, bench, name):
    fig, note = figures.builders(res, bench)[name]()
    try:
        problems = style.layout_problems(fig)
    finally:
        plt.close(fig)
    assert not problems, f"{name}: " + "; ".join(problems)
    return note


@pytest.mark.parametrize("name", outputs.FIGURES)
def test_committed_figure_layout(committed, name):
    note = _check(*committed, name)
    assert note is None, f"{name} is a placeholder on the committed records: {note}"


@pytest.mark.parametrize("name", outputs.FIGURES)
def test_synthetic_figure_layout(synthetic, name, monkeypatch):
    # the synthetic data set's images cannot be rebuilt: the maps are drawn alone (and no child
    # process imports torch for nothing)
    monkeypatch.setattr(figures, "_explained_images", lambda *a, **k: (None, None))
    note = _check(*synthetic, name)
    assert note is None, f"{name} is a placeholder on the synthetic records: {note}"


def _legend_colours(fig) -> dict[str, str]:
    from matplotlib.colors import to_hex

    out = {}
    for leg in fig.legends + [ax.get_legend() for ax in fig.get_axes() if ax.get_legend()]:
        for handle, text in zip(leg.legend_handles, leg.get_texts()):
            colour = handle.get_color() if hasattr(handle, "get_color") else handle.get_facecolor()
            out[text.get_text()] = to_hex(colour)
    return out


def test_two_figures_give_a_method_the_same_colour(synthetic):
    res, bench = synthetic
    seen = {}
    for name in ("accuracy_curves", "accuracy_vs_budget", "training_length", "robustness_severity"):
        fig, _ = figures.builders(res, bench)[name]()
        seen[name] = _legend_colours(fig)
        plt.close(fig)
    braincl = style.label("braincl")
    for a in seen:
        for b in seen:
            shared = set(seen[a]) & set(seen[b])
            assert braincl in shared
            for lab in shared:
                assert seen[a][lab] == seen[b][lab], f"{lab}: {seen[a][lab]} in {a}, {seen[b][lab]} in {b}"
    ids = {style.label(m): m for m in SYNTHETIC_METHODS}
    for lab, colour in seen["accuracy_curves"].items():
        assert colour == style.colour(ids[lab])


def test_method_styles_are_fixed_distinct_and_derived_for_variants():
    known = [m for m in style.METHODS]
    pairs = {(style.method_style(m).colour, style.method_style(m).marker) for m in known}
    assert len(pairs) == len(known), "two methods share colour and marker"
    assert len({style.label(m) for m in known}) == len(known)
    label, colour, marker = style.method_style("braincl+raw")
    assert (label, marker) == ("BrainCL (raw)", "o") and colour != style.colour("braincl")
    assert style.method_style("braincl+raw") == style.method_style("braincl+raw")  # stable
    assert style.method_style("newmethod") == style.method_style("newmethod")
    assert style.line_kw("braincl")["lw"] > style.line_kw("er")["lw"]  # BrainCL stands out
    assert style.method_order(["joint", "er", "braincl", "er+balanced"]) == ["braincl", "er", "er+balanced", "joint"]


@pytest.mark.filterwarnings("ignore:constrained_layout not applied")  # the text far outside squeezes the axes
def test_the_layout_check_finds_overlaps_hidden_markers_and_clipped_text():
    fig, (ax,) = style.figure(style.SINGLE_COLUMN, 2.0)
    ax.plot([0, 1], [0, 1], marker="o", label="a")
    ax.text(0.5, 0.5, "first label")
    ax.text(0.5, 0.5, "second label")
    ax.text(3.0, 0.5, "far outside the image", transform=ax.transAxes)
    ax.legend(loc="lower left")  # over the marker at (0, 0)
    problems = style.layout_problems(fig)
    plt.close(fig)
    assert any("overlap" in p for p in problems)
    assert any("outside the saved image" in p for p in problems)
    assert any("data markers" in p for p in problems)
