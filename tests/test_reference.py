"""The Seq-MNIST reference (Buzzega et al., 2020): the protocol config resolves for every method of
the table, every cell runs Mammoth's best_args, and the comparison table computes what it says from
records."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from analysis import reference

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "config/experiments/reference/seq_mnist_der2020.yaml"
RUNS = REPO / "results/runs/seq-mnist/der2020"


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
        assert cfg["method"]["params"]["head"] == "fixed"  # by_dataset.mnist: Mammoth's full-width head
    if method == "joint":
        assert cfg["method"]["params"]["schedule"] == "final"  # by_dataset.mnist: Mammoth's models/joint.py


@pytest.fixture(scope="module")
def jobs():
    return reference.reference_jobs(REPO / "config/config.yaml")


def test_every_reference_job_runs_mammoths_best_args(jobs):
    """Every cell of targets.reference resolves to best_args['seq-mnist'] of Mammoth for its method and
    buffer (mammoth_best_args_seq_mnist.yaml); only BrainCL, which is not in the paper, has no entry."""
    assert len(jobs) >= 25
    unmatched = sorted({cfg["method"]["name"] for _, cfg in jobs if reference.best_args_mismatches(cfg) is None})
    assert unmatched == ["braincl"]
    bad = {path: m for path, cfg in jobs if (m := reference.best_args_mismatches(cfg))}
    assert not bad, bad
    best = reference.load_best_args()
    assert best["source"]["repository"] == "aimagelab/mammoth" and best["source"]["path"] == "utils/best_args.py"
    paths = {path for path, _ in jobs}
    for buffer in reference.BUFFERS:  # every published buffer of every buffered method has a job
        for method in ("er", "icarl", "der", "derpp"):
            assert f"seq-mnist/der2020/{method}/{buffer * reference.BYTES_PER_EXEMPLAR}" in paths


def test_the_best_args_check_catches_a_changed_value(jobs):
    cfg = copy.deepcopy(dict(jobs)["seq-mnist/der2020/derpp/4024320"])
    cfg["method"]["params"]["replay_batch_size"] = 128  # Mammoth: minibatch_size 64
    cfg["train"]["optimizer"]["momentum"] = 0.9          # Mammoth: plain SGD (optim_mom 0)
    assert reference.best_args_mismatches(cfg) == [
        "derpp 5120: train.optimizer.momentum = 0.9, Mammoth's optim_mom = 0.0",
        "derpp 5120: method.params.replay_batch_size = 128, Mammoth's minibatch_size = 64"]
    cfg = copy.deepcopy(dict(jobs)["seq-mnist/der2020/lwf/none"])
    cfg["method"]["params"]["lambda"] = 3.0  # Mammoth's lwf alpha is this suite's lambda
    assert reference.best_args_mismatches(cfg) == ["lwf -1: method.params.lambda = 3.0, Mammoth's alpha = 1"]
    cfg = copy.deepcopy(dict(jobs)["seq-mnist/der2020/er/157200"])
    cfg["memory"]["budget"] = "60KB"
    assert "none of best_args' buffers" in reference.best_args_mismatches(cfg)[0]


def test_committed_reference_records_ran_mammoths_best_args():
    records = [json.loads(p.read_text()) for p in sorted(RUNS.rglob("metrics.json"))]
    assert records
    bad = {}
    for r in records:
        m = reference.best_args_mismatches(r["config"])
        if m:
            bad[(r["run"]["method"], r["run"]["budget_bytes"], r["run"]["seed"])] = m
    assert not bad, bad
    for r in records:  # the reruns with Mammoth's JOINT schedule and ER head
        if r["run"]["method"] == "joint":
            assert r["method_info"]["schedule"] == "final" and r["method_info"]["trained_rows"] == [4]
        if r["run"]["method"] == "er":
            assert r["config"]["method"]["params"]["head"] == "fixed"


def test_budgets_hold_exactly_the_published_exemplar_counts():
    for n in reference.BUFFERS:
        assert reference.buffer_of(n * 786) == n
    assert reference.buffer_of(157201) is None


def test_welch_interval_uses_both_spreads_and_agrees_with_scipy():
    ours = [93.0, 94.5, 91.5]
    w = reference.welch(ours, 93.40, 1.29)
    v1, v2 = np.var(ours, ddof=1) / 3, 1.29 ** 2 / 10
    df = (v1 + v2) ** 2 / (v1 ** 2 / 2 + v2 ** 2 / 9)
    assert w["welch_df"] == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    assert (w["ci_low"], w["ci_high"]) == pytest.approx((-0.4 - half, -0.4 + half))
    # the interval excludes 0 exactly when Welch's t-test rejects at 5%
    for pub in np.linspace(88.0, 99.0, 45):
        r = reference.welch(ours, pub, 1.29)
        assert (r["ci_low"] <= 0 <= r["ci_high"]) == (r["p_value"] >= 0.05), pub
    assert reference.welch([93.0], 93.4, 1.29) is None  # one seed: no spread of ours
    # a tight published cell and tight seeds: a 1-point gap is a difference (the former 3-point floor passed it)
    assert reference.within([20.8, 20.9, 21.0], 19.62, 0.01) is False
    assert reference.within([20.0, 20.9, 19.5], 20.46, 1.01) is True


def test_also_matches_names_the_other_methods_the_runs_cannot_be_told_from():
    assert reference.also_matches([94.8, 95.0, 95.2], "er", 5120) == ["DER", "DER++"]
    assert reference.also_matches([80.0, 80.5, 79.5], "er", 200) == []
    assert reference.also_matches([19.6, 19.65, 19.62], "finetune", None) == ["LwF"]


def _record(tmp, method, budget, seed, accs, variant=None, schedule=None):
    path = tmp / (f"{method}+{variant}" if variant else method) / str(budget) / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"config": {"variant": variant}, "run": {"method": method, "budget_bytes": budget},
                                "summary": {"last_acc_task": sum(accs) / len(accs)},
                                "timings": {"per_task": [{"train_s": 1.0}]},
                                "method_info": {"schedule": schedule} if schedule else {}}))


def test_table_reports_mean_std_n_interval_and_verdict(tmp_path):
    _record(tmp_path, "er", 393000, 0, [0.80, 0.90])
    _record(tmp_path, "er", 393000, 1, [0.90, 0.90])
    _record(tmp_path, "finetune", None, 0, [0.0, 0.2])
    _record(tmp_path, "finetune", None, 1, [0.0, 0.22])
    _record(tmp_path, "joint", None, 0, [0.95, 0.97], schedule="final")
    table = {(r["method"], r["buffer"]): r for r in reference.rows(reference.load_runs(tmp_path))}
    er = table[("ER", 500)]
    assert er["n"] == 2 and er["ours_mean"] == pytest.approx(87.5) and er["published_n"] == 10
    assert er["ours_std"] == pytest.approx(math.sqrt(2 * 2.5 ** 2))
    assert er["difference"] == pytest.approx(87.5 - 86.12) and er["within"] == "yes"
    assert er["ci_low"] < 0 < er["ci_high"] and er["also_matches"] == "iCaRL, DER, DER++"  # 2 noisy seeds tell little apart
    sgd = table[("SGD", "-")]
    assert sgd["ours_mean"] == pytest.approx(10.5) and sgd["within"] == "no" and sgd["ci_high"] < 0
    assert table[("DER", 200)]["n"] == 0 and table[("DER", 200)]["within"] == ""
    joint = table[("JOINT", "-")]
    assert joint["n"] == 1 and joint["within"] == "" and "only the last row" in joint["note"]
    paths = reference.write(tmp_path / "tables", list(table.values()))
    md = paths[0].read_text()
    assert "87.50 ± 3.54 (n=2)" in md and "missing" in md and "SGD: -9.10" in md
    assert "Cells within: 1 of 2 compared: ER 500." in md and "(also iCaRL, DER, DER++)" in md
    assert "JOINT: trained once on all tasks' data after the last task" in md
    assert paths[1].read_text().splitlines()[0].startswith("method,variant,buffer,budget_bytes")
    assert "interval & within & also matches" in paths[2].read_text()


def test_a_cell_with_runs_of_two_joint_schedules_is_refused(tmp_path):
    _record(tmp_path, "joint", None, 0, [0.95], schedule="final")
    _record(tmp_path, "joint", None, 1, [0.95], schedule="every_task")
    with pytest.raises(SystemExit, match="different schedules"):
        reference.rows(reference.load_runs(tmp_path))


def test_variant_rows_follow_their_method_and_are_not_counted(tmp_path):
    for seed, acc in enumerate((0.85, 0.84)):
        _record(tmp_path, "der", 157200, seed, [acc])
        _record(tmp_path, "der", 157200, seed, [acc - 0.15], variant="growhead")
    _record(tmp_path, "der", 157200, 0, [0.10], variant="other")  # not a known variant row: skipped
    table = reference.rows(reference.load_runs(tmp_path))
    names = [(r["method"], r["buffer"]) for r in table]
    i = names.index(("DER", 5120))
    assert names[i + 1] == ("DER, growing head", 200) and ("DER, growing head", 500) not in names
    grow = table[i + 1]
    assert grow["variant"] == "growhead" and grow["ours_mean"] == pytest.approx(69.5) and grow["within"] == "no"
    der = table[names.index(("DER", 200))]
    assert der["ours_mean"] == pytest.approx(84.5) and der["within"] == "yes"
    md = reference.render_md(table)
    assert "Cells within: 1 of 1 compared: DER 200." in md and "Cells outside: 0." in md and "not counted above" in md
    assert reference.render_csv(table).splitlines()[0].startswith("method,variant,buffer")
