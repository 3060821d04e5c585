"""The claims table from fixture records: each claim reaches each verdict its rule allows, paired by
seed; absent runs name the workflow target; only the four verdict words appear; the ablations the
claims rest on train what they say (the freeze ablation no more backbone than full BrainCL, the
sleep ablation the same draws without replay); the generated outputs are byte-stable."""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

import numpy as np
import pytest

from analysis.claims import build_claims, markdown, memory_binds
from analysis.load import load_results
from analysis.stats import CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, REPRODUCED, VERDICTS, crossings, effective_rank
from make_records import compute_section, make_record, write_record

B60, B300 = 60_000, 300_000
ROOT = Path(__file__).resolve().parent.parent


def flat(acc):
    """A 2-task matrix whose avg = last = acc and forgetting 0."""
    return [[acc, None], [acc, acc]]


def forgetful(acc, drop):
    return [[acc, None], [acc - drop, acc]]


def write_group(root, method, budget, accs, variant=None, **kw):
    for seed, a in enumerate(accs):
        write_record(root, make_record(method, "mnist5k", seed, flat(a), budget_bytes=budget, variant=variant, **kw))


def verdicts(root):
    return {c.number: c for c in build_claims(load_results(root))}


def seeded(effect, n=5, noise=0.002, seed=0):
    """Per-seed accuracies of a reference with a 5-point spread between seeds, and of a variant that
    differs from it by ``effect`` plus small noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.80, 0.05, n)
    return base.tolist(), (base + effect + rng.normal(0, noise, n)).tolist()


def test_effective_rank_and_crossings_by_hand():
    assert effective_rank([1, 0, 0]) == pytest.approx(1.0)
    assert effective_rank([0.25] * 4) == pytest.approx(4.0)
    (lo, hi, x), = crossings([1e4, 1e5, 1e6], [0.1, 0.1, -0.1])
    assert (lo, hi) == (1e5, 1e6) and x == pytest.approx(10 ** 5.5)


@pytest.mark.parametrize("effect, expected", [(0.03, REPRODUCED), (0.0, INCONCLUSIVE), (-0.03, CONTRADICTED)])
def test_claim5_on_synthetic_records_with_a_known_answer(tmp_path, effect, expected):
    # full BrainCL leads the shared-decoder variant by `effect` at every seed, over a 5-point seed spread
    shared, full = seeded(effect)
    write_group(tmp_path, "braincl", B60, full)
    write_group(tmp_path, "braincl", B60, shared, variant="shared")
    c = verdicts(tmp_path)[5]
    assert c.verdict == expected
    assert any("paired by seed, n=5" in e for e in c.evidence)
    assert ("seeds needed" in " ".join(c.evidence)) == (expected == INCONCLUSIVE)


def test_claim1_pairs_by_seed_and_holds_the_paper_to_its_stated_lead(tmp_path):
    write_group(tmp_path, "braincl", B60, [0.90, 0.95, 0.85])
    write_group(tmp_path, "er", B60, [0.80, 0.85, 0.75])       # 10 points behind at every seed
    write_group(tmp_path, "icarl", B60, [0.60, 0.60, 0.60])
    write_group(tmp_path, "finetune", None, [0.99, 0.99, 0.99])  # unbudgeted: never the comparison
    c = verdicts(tmp_path)[1]
    assert c.verdict == REPRODUCED  # +10 inside the paper's +4.6..+15.3 and +3.7..+17.5
    assert any("best baseline er" in e and "overlaps the interval" in e for e in c.evidence)
    write_group(tmp_path, "er", B60, [0.88, 0.93, 0.83])       # now 2 points behind: short of the stated lead
    c = verdicts(tmp_path)[1]
    assert c.verdict == CONTRADICTED and any("short of the paper's stated effect" in e for e in c.evidence)


def test_claim2_only_at_budgets_that_bind(tmp_path):
    def info(ltm):  # two tasks of 200 training images each
        return {"per_task": [{"task": 0, "working_cues": 200, "ltm_cues": min(ltm, 200)},
                             {"task": 1, "working_cues": 200, "ltm_cues": ltm, "ltm_cues_per_class": ltm / 4}]}
    write_group(tmp_path, "joint", None, [0.97, 0.98, 0.96])
    write_group(tmp_path, "braincl", B60, [0.93, 0.95, 0.91], method_info=info(100))   # gap 4
    write_group(tmp_path, "er", B60, [0.90, 0.92, 0.88])                                # gap 7
    write_group(tmp_path, "braincl", B300, [0.80, 0.80, 0.80], method_info=info(400))  # keeps every image
    write_group(tmp_path, "er", B300, [0.96, 0.97, 0.95])
    c = verdicts(tmp_path)[2]
    assert c.verdict == REPRODUCED  # BrainCL's gap is 3 points smaller at the one binding budget
    assert any("does not bind at 300.00 KB" in e for e in c.evidence)
    assert not any("300.00 KB: gap" in e for e in c.evidence)
    assert memory_binds(load_results(tmp_path).runs.query("budget_bytes == @B300 and method == 'braincl'")
                        ["path"].iloc[0]) is False


def _freeze_records(root, variant_backbone):
    for seed, (drop_full, drop_var) in enumerate(((0.05, 0.30), (0.06, 0.33), (0.04, 0.29))):
        write_record(root, make_record("braincl", "mnist5k", seed, forgetful(0.9, drop_full), budget_bytes=B60,
                                       compute=compute_section(2, 10**6, 1000)))
        write_record(root, make_record("braincl", "mnist5k", seed, forgetful(0.9, drop_var), budget_bytes=B60,
                                       variant="nofreeze-equal", compute=compute_section(2, 10**6, variant_backbone)))


def test_claim3_is_judged_only_at_equal_backbone_training(tmp_path):
    _freeze_records(tmp_path, 1000)
    assert verdicts(tmp_path)[3].verdict == REPRODUCED  # 26 points more forgetting without the freeze
    _freeze_records(tmp_path, 1500)                       # the variant trained the backbone more: confounded
    c = verdicts(tmp_path)[3]
    assert c.verdict == NOT_TESTABLE and any("MORE than full BrainCL" in e for e in c.evidence)


def test_claim4_reads_task_one_after_task_two(tmp_path):
    for seed in range(3):
        full = [[0.95, None, None], [0.90 + 0.01 * seed, 0.94, None], [0.85, 0.86, 0.93]]
        abl = [[0.95, None, None], [0.40 + 0.01 * seed, 0.96, None], [0.30, 0.45, 0.97]]
        write_record(tmp_path, make_record("braincl", "mnist5k", seed, full, budget_bytes=B60))
        write_record(tmp_path, make_record("braincl", "mnist5k", seed, abl, budget_bytes=B60, variant="sleep-current"))
    c = verdicts(tmp_path)[4]
    assert c.verdict == REPRODUCED
    assert any("task-1 accuracy after task 2" in e and "+50.0 pp" in e for e in c.evidence)


def test_absent_runs_name_the_target(tmp_path):
    write_group(tmp_path, "braincl", B60, [0.90, 0.91, 0.92])
    v = verdicts(tmp_path)
    for n in (3, 4, 5, 6):
        assert v[n].verdict == NOT_TESTABLE and "snakemake --cores 2 ablations" in v[n].evidence[0]
    assert v[8].verdict == NOT_TESTABLE and all("snakemake --cores 2 robustness" in e for e in v[8].evidence)
    assert markdown(list(v.values())).count("**Verdict:") == 8


def _verdict_words(md: str) -> list[str]:
    """Every verdict claims.md states: the summary column and each claim's 'Verdict:' line, split
    into parts ('avg: reproduced; last: inconclusive'), and each evidence line's '→ verdict'."""
    found = re.findall(r"\*\*Verdict: (.+?)\.\*\*", md) + re.findall(r"^\| \d+ \| .+? \| \*\*(.+?)\*\* \|", md, re.M)
    words = [part.split(": ")[-1] for v in found for part in v.split("; ")]
    return words + re.findall(r"→ ([a-z ]+?)(?: \(|;|$)", md, re.M)


def test_claims_md_uses_only_the_four_verdicts(tmp_path):
    write_group(tmp_path, "braincl", B60, [0.90, 0.91, 0.92])
    write_group(tmp_path, "er", B60, [0.89, 0.93, 0.90])
    write_group(tmp_path, "joint", None, [0.97, 0.97, 0.97])
    _freeze_records(tmp_path, 1000)
    md = markdown(build_claims(load_results(tmp_path)))
    words = _verdict_words(md)
    assert len(words) > 10 and set(words) <= set(VERDICTS)
    for retired in ("not reproduced", "partly", "no runs yet", "2 std", "2-std"):
        assert retired not in md


def test_committed_claims_md_uses_only_the_four_verdicts():
    md = (ROOT / "results" / "claims.md").read_text()
    words = _verdict_words(md)
    assert words and set(words) <= set(VERDICTS)


def test_committed_freeze_ablation_trains_the_backbone_no_more_than_braincl():
    runs = ROOT / "results" / "runs" / "mnist5k" / "cil"
    pairs = 0
    for variant in sorted((runs / "braincl+nofreeze-equal").glob("*/seed*/metrics.json")):
        full = runs / "braincl" / variant.relative_to(runs / "braincl+nofreeze-equal")
        backbone = [json.loads(p.read_text())["compute"]["training"]["backbone_backward"] for p in (variant, full)]
        assert backbone[0] <= backbone[1], variant
        pairs += 1
    assert pairs >= 6  # 60 KB and 300 KB, three seeds each


def test_outputs_are_byte_stable_and_compute_is_shown(tmp_path):
    from analysis.cli import main

    runs = tmp_path / "runs"
    for seed in range(2):
        for method, budget in (("braincl", B60), ("er", B60), ("finetune", None)):
            write_record(runs, make_record(method, "mnist5k", seed, flat(0.8 + 0.01 * seed), budget_bytes=budget,
                                           spectrum=[0.5, 0.3, 0.2],
                                           compute=compute_section(2, 2_000_000_000, 1000,
                                                                   500_000_000 if method == "braincl" else 0)))
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert main(["--runs", str(runs), "--benchmarks", str(tmp_path), "--out", str(out), "--only", "core"]) == 0
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file() and "logs" not in p.parts)
    assert Path("claims.md") in files and Path("report.html") in files and Path("figures/accuracy_vs_flops.pdf") in files
    _, mismatch, errors = filecmp.cmpfiles(outs[0], outs[1], [str(f) for f in files], shallow=False)
    assert not mismatch and not errors
    main_md = (outs[0] / "tables" / "main.md").read_text()
    assert "| 2.00 | 1,000 | 0.50 |" in main_md  # train GFLOP/task, backbone updates/task, encode GFLOP/task
    html = (outs[0] / "report.html").read_text()
    assert '<img src="figures/accuracy_curves.png"' in html and "base64" not in html


def test_the_ablation_options_train_what_they_say(run_tiny, tmp_path):
    """nofreeze-equal: the wake's backbone samples come out of sleep's, never more in total;
    sleep-current: the same sleep draws as full BrainCL, which now train the backbone on the current
    task only."""
    small = {"method.params.codec_steps": 20, "method.params.N": 8, "method.params.M": 4, "method.params.depth": 2,
             "method.params.max_cdf_length": 32}
    full = run_tiny("braincl", "30KB", out=tmp_path / "full", **small)
    equal = run_tiny("braincl", "30KB", out=tmp_path / "equal", **small,
                     **{"method.params.freeze_backbone_in_wake": False, "method.params.equal_backbone_updates": True})
    current = run_tiny("braincl", "30KB", out=tmp_path / "current", **small,
                       **{"method.params.sleep_data": "current_task"})
    phase = lambda r, p: r["compute"]["per_phase"].get(p, {"samples": 0, "backbone_backward": 0})  # noqa: E731
    assert phase(full, "wake")["backbone_backward"] == 0 < phase(equal, "wake")["backbone_backward"]
    assert 0 < equal["compute"]["training"]["backbone_backward"] <= full["compute"]["training"]["backbone_backward"]
    assert phase(current, "sleep")["samples"] == phase(full, "sleep")["samples"]
    assert current["accuracy"]["tag"][0] == full["accuracy"]["tag"][0]  # task 1 has nothing to replay: the same
    assert current["accuracy"]["tag"][1] != full["accuracy"]["tag"][1]
    assert current["method_info"]["ablations"]["sleep_data"] == "current_task"
