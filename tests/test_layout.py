"""Layering: the core (``braincl/``) never imports from ``baselines/``; baselines build on the core."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names, at any depth (function
    bodies included). Relative imports stay inside their package and are skipped."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_no_core_module_imports_from_baselines():
    files = sorted((ROOT / "braincl").rglob("*.py"))
    assert len(files) > 20  # the walk found the package
    offenders = {str(f.relative_to(ROOT)): sorted(m for m in imported_modules(f) if m.split(".")[0] == "baselines")
                 for f in files}
    assert not {f: m for f, m in offenders.items() if m}, offenders


def test_the_check_sees_a_function_level_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from baselines.jpeg_replay import encode_jpeg\n    import baselines.icarl\n")
    assert imported_modules(probe) == {"baselines.jpeg_replay", "baselines.icarl"}
