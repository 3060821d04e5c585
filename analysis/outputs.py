"""Names of everything ``python -m analysis`` writes, so that the workflow can declare them as
outputs (each figure has a caption in ``analysis/captions/<figure>.rst`` for ``snakemake --report``).
Every listed file is always written; a table or figure without data holds a note saying why."""

from __future__ import annotations

from pathlib import Path

TABLES = ("main", "forgetting", "unknown_auroc", "robustness", "classwise_spread")
TABLE_FORMATS = ("md", "tex", "csv")
FIGURES = ("accuracy_curves", "accuracy_vs_budget", "feature_spectra", "classwise_accuracy", "attention_drift",
           "rate_distortion")
FIGURE_FORMATS = ("png", "pdf")
CAPTIONS = Path(__file__).with_name("captions")

# Upper bounds are shown in tables but never bolded: joint training sees all data at once.
UPPER_BOUNDS = ("joint",)


def table_paths(out: str | Path) -> list[Path]:
    return [Path(out) / "tables" / f"{t}.{ext}" for t in TABLES for ext in TABLE_FORMATS]


def figure_paths(out: str | Path) -> list[Path]:
    return [Path(out) / "figures" / f"{f}.{ext}" for f in FIGURES for ext in FIGURE_FORMATS]


def caption_path(figure: str) -> Path:
    return CAPTIONS / f"{figure}.rst"
