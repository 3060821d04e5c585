"""The Seq-MNIST reference (Buzzega et al., 2020): the protocol config resolves for every method of
the table, and the comparison table computes what it says from records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from analysis import reference

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "config/experiments/reference/seq_mnist_der2020.yaml"


@pytest.mark.parametrize("method,budget", [("finetune", None), ("joint", None), ("ewc", None), ("lwf", None),
                                           ("er", 157200), ("icarl", 393000), ("der", 157200), ("derpp", 4024320)])
def test_protocol_resolves_for_every_method(method, budget):
    from braincl import config

    sets = [f"method.name={method}"] + ([f"memory.budget={budget}"] if budget else [])
    cfg = config.load(EXPERIMENT, sets)
    assert cfg["scenario"]["shuffle_classes"] is False and cfg["train"]["batch_size"] == 10
    assert cfg["model"]["backbone"] == "mlp" and cfg["dataset"]["name"] == "mnist"
    if method in ("er", "der", "derpp"):
        assert cfg["method"]["params"]["buffer"] == "reservoir"  # by_dataset.mnist: the paper's buffer
    if method in ("der", "derpp"):
        assert cfg["method"]["params"]["head"] == "fixed"  # by_dataset.mnist: Mammoth's full-width head


def test_budgets_hold_exactly_the_published_exemplar_counts():
    for n in reference.BUFFERS:
        assert reference.buffer_of(n * 786) == n
    assert reference.buffer_of(157201) is None


def test_tolerance_is_two_published_stds_or_three_points():
    assert reference.tolerance(0.2) == 3.0 and reference.tolerance(1.89) == pytest.approx(3.78)


def _record(tmp, method, budget, seed, accs, variant=None):
    path = tmp / (f"{method}+{variant}" if variant else method) / str(budget) / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"config": {"variant": variant}, "run": {"method": method, "budget_bytes": budget},
                                "summary": {"last_acc_task": sum(accs) / len(accs)},
                                "timings": {"per_task": [{"train_s": 1.0}]}}))


def test_table_reports_mean_std_n_difference_and_verdict(tmp_path):
    _record(tmp_path, "er", 393000, 0, [0.80, 0.90])
    _record(tmp_path, "er", 393000, 1, [0.90, 0.90])
    _record(tmp_path, "finetune", None, 0, [0.0, 0.2])
    table = {(r["method"], r["buffer"]): r for r in reference.rows(reference.load_runs(tmp_path))}
    er = table[("ER", 500)]
    assert er["n"] == 2 and er["ours_mean"] == pytest.approx(87.5)
    assert er["ours_std"] == pytest.approx(math.sqrt(2 * 2.5 ** 2))
    assert er["difference"] == pytest.approx(87.5 - 86.12) and er["within"] == "yes"
    sgd = table[("SGD", "-")]
    assert sgd["ours_mean"] == pytest.approx(10.0) and sgd["within"] == "no"
    assert table[("DER", 200)]["n"] == 0 and table[("DER", 200)]["within"] == ""
    paths = reference.write(tmp_path / "tables", list(table.values()))
    md = paths[0].read_text()
    assert "87.50 ± 3.54 (n=2)" in md and "missing" in md and "SGD -: -9.60" in md
    assert paths[1].read_text().splitlines()[0].startswith("method,variant,buffer,budget_bytes")


def test_variant_rows_follow_their_method_and_are_not_counted(tmp_path):
    _record(tmp_path, "der", 157200, 0, [0.85])
    _record(tmp_path, "der", 157200, 0, [0.70], variant="growhead")
    _record(tmp_path, "der", 157200, 0, [0.10], variant="other")  # not a known variant row: skipped
    table = reference.rows(reference.load_runs(tmp_path))
    names = [(r["method"], r["buffer"]) for r in table]
    i = names.index(("DER", 5120))
    assert names[i + 1] == ("DER, growing head", 200) and ("DER, growing head", 500) not in names
    grow = table[i + 1]
    assert grow["variant"] == "growhead" and grow["ours_mean"] == pytest.approx(70.0) and grow["within"] == "no"
    der = table[names.index(("DER", 200))]
    assert der["ours_mean"] == pytest.approx(85.0) and der["within"] == "yes"
    md = reference.render_md(table)
    assert "Cells outside tolerance: 0 of 1 compared." in md and "not counted above" in md
    assert reference.render_csv(table).splitlines()[0].startswith("method,variant,buffer")
