"""Names of everything ``python -m analysis`` writes, so that the workflow can declare them as
outputs (each figure has a caption in ``analysis/captions/<figure>.rst``). Every listed file is
always written; a table or figure without data holds a note saying why.

Outputs come in groups, one per workflow rule that declares them: ``core`` (rule ``analysis``, part
of ``all``: the headline tables and figures, the claims table and the report) and one group per
named target under ``targets:`` in the workflow config (rules ``robustness``, ``ablations``,
``controls``, ``training_length``, ``budget_curve``). ``python -m analysis`` writes every group; ``--only`` some."""

from __future__ import annotations

from pathlib import Path

GROUPS = {
    "core": {"tables": ("main", "forgetting", "classwise_spread", "feature_spectra"),
             "figures": ("accuracy_curves", "feature_spectra", "classwise_accuracy", "attention_drift",
                         "rate_distortion", "accuracy_vs_flops")},
    "robustness": {"tables": ("unknown_auroc", "robustness"), "figures": ("robustness_severity", "robustness_longtail")},
    "ablations": {"tables": ("ablations",), "figures": ()},
    "controls": {"tables": ("controls",), "figures": ()},
    "training_length": {"tables": ("training_length",), "figures": ("training_length",)},
    "budget_curve": {"tables": ("memory_accuracy",), "figures": ("accuracy_vs_budget",)},
}
TABLES = tuple(t for g in GROUPS.values() for t in g["tables"])
TABLE_FORMATS = ("md", "tex", "csv")
FIGURES = tuple(f for g in GROUPS.values() for f in g["figures"])
FIGURE_FORMATS = ("png", "pdf")
CAPTIONS = Path(__file__).with_name("captions")
CLAIMS = "claims.md"     # under --out, written with the core group
REPORT = "report.html"   # under --out, written with the core group

# Upper bounds are shown in tables but never bolded: joint training sees all data at once.
UPPER_BOUNDS = ("joint",)


def _groups(groups) -> list[str]:
    groups = list(GROUPS) if groups is None else list(groups)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown output group(s) {', '.join(unknown)}; valid: {', '.join(GROUPS)}")
    return groups


def tables_of(groups=None) -> list[str]:
    return [t for g in _groups(groups) for t in GROUPS[g]["tables"]]


def figures_of(groups=None) -> list[str]:
    return [f for g in _groups(groups) for f in GROUPS[g]["figures"]]


def table_paths(out: str | Path, groups=None) -> list[Path]:
    return [Path(out) / "tables" / f"{t}.{ext}" for t in tables_of(groups) for ext in TABLE_FORMATS]


def figure_paths(out: str | Path, groups=None) -> list[Path]:
    return [Path(out) / "figures" / f"{f}.{ext}" for f in figures_of(groups) for ext in FIGURE_FORMATS]


def document_paths(out: str | Path, groups=None) -> list[Path]:
    """The claims table and the report (core group)."""
    return [Path(out) / CLAIMS, Path(out) / REPORT] if "core" in _groups(groups) else []


def all_paths(out: str | Path, groups=None) -> list[Path]:
    return table_paths(out, groups) + figure_paths(out, groups) + document_paths(out, groups)


def caption_path(figure: str) -> Path:
    return CAPTIONS / f"{figure}.rst"
