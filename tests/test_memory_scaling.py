"""BrainCL's memory accounting against tasks and budgets (benchmarks/memory_scaling.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_decoders_crowd_the_cues_out_as_tasks_grow():
    import memory_scaling as ms

    codec = {"N": 16, "M": 8, "depth": 2, "decoder_precision": "fp16", "max_cdf_length": 48}
    dec, tab = ms.codec_nbytes(1, size=28, **codec)
    assert dec > 0 and tab > 0
    # A budget that holds a little more than 6 tasks' decoders and tables: cues per class must fall, then stop.
    budget = 6 * (dec + tab) + 4000
    rows = ms.accounting(28, 1, f"{budget}B", 10, codec)
    per_class = [r["cues_per_class"] for r in rows]
    assert per_class[0] > 0 and per_class == sorted(per_class, reverse=True)
    assert per_class[-1] == 0 and len(rows) == 7  # refused at task 7: decoders alone exceed the budget
    for r in rows[:-1]:
        assert r["decoder_bytes"] + r["table_bytes"] + r["cue_bytes"] <= budget


def test_committed_scaling_record_has_both_sweeps():
    import json

    record = json.loads((ROOT / "results" / "benchmarks" / "memory_scaling.json").read_text())
    assert record["tasks"] == [5, 10, 20, 50]
    assert {(s["px"], s["budget"]) for s in record["sweeps"]} >= {(28, "50MB"), (224, "50MB"), (224, "280MB"), (224, "500MB")}
    assert (ROOT / "results" / "benchmarks" / "memory_scaling.png").is_file()
