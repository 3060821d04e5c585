"""Enough seeds: the headline grid and every run a claim of results/claims.md rests on have at least
five seeds in the workflow config, and the committed records hold them."""

from __future__ import annotations

from pathlib import Path

import pytest

from braincl import yamlio

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "runs"
MIN_SEEDS = 5
# (target, methods or None for all, variants): the runs analysis/claims.py reads. Claim 1 and 2: the
# grid and the memory-accuracy curve; 3-6: these BrainCL variants beside plain BrainCL; 7: EWC's
# spectrum; 8: the robustness protocols.
CLAIM_RUNS = (
    ("headline", None, {""}),
    ("budget_curve", None, {""}),
    ("ablations", {"braincl"}, {"", "nofreeze-equal", "sleep-current", "shared", "lambda1e-3", "lambda1e-1"}),
    ("full", {"ewc"}, {""}),
    ("robustness", None, {""}),
)


def config():
    return yamlio.read_file(ROOT / "config" / "config.yaml", "workflow config")


def claim_entries():
    targets = config()["targets"]
    for target, methods, variants in CLAIM_RUNS:
        for entry in targets[target]:
            for method in entry["methods"]:
                if (methods is None or method in methods) and entry.get("variant", "") in variants:
                    yield target, method, entry


def test_every_run_a_claim_rests_on_has_five_seeds_in_the_config():
    seen = set()
    for target, method, entry in claim_entries():
        assert len(set(entry["seeds"])) >= MIN_SEEDS, (target, method, entry.get("variant"), entry["seeds"])
        seen.add((target, method, entry.get("variant", "")))
    assert {("ablations", "braincl", v) for v in CLAIM_RUNS[2][2]} <= seen
    assert ("full", "ewc", "") in seen
    headline = config()["targets"]["headline"][0]
    assert set(headline["methods"]) == set(config()["grid"][0]["methods"])


def test_the_committed_records_hold_the_headline_grid_at_five_seeds():
    headline = config()["targets"]["headline"]
    for entry in headline:
        for method in entry["methods"]:
            folder = RUNS / entry["dataset"] / entry["protocol"] / method
            cells = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
            assert cells, f"no committed runs under {folder}"
            for cell in cells:
                seeds = sorted(p.parent.name for p in cell.glob("seed*/metrics.json"))
                assert len(seeds) >= MIN_SEEDS, f"{cell.relative_to(ROOT)}: {len(seeds)} seeds ({seeds})"


@pytest.mark.parametrize("variant", sorted(CLAIM_RUNS[2][2] - {""}))
def test_the_committed_claim_variants_have_five_seeds(variant):
    for budget in ("60KB", "300KB"):
        cell = RUNS / "mnist5k" / "cil" / f"braincl+{variant}" / budget
        seeds = list(cell.glob("seed*/metrics.json"))
        assert len(seeds) >= MIN_SEEDS, f"{cell.relative_to(ROOT)}: {len(seeds)} seeds"
