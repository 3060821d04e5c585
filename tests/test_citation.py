"""LICENSE and CITATION.cff: the licence is the one pyproject.toml declares, and the citation file
parses as YAML with the keys Citation File Format 1.2.0 requires (at the top level and in each
reference), citing the BrainCL paper."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _authors_ok(authors) -> bool:
    """CFF: a non-empty list of persons (family-names) or entities (name)."""
    return isinstance(authors, list) and bool(authors) and all(
        isinstance(a, dict) and (a.get("family-names") or a.get("name")) for a in authors)


def test_licence_is_the_declared_mit():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == {"text": "MIT"} and text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text


def test_citation_file_has_the_required_keys_and_cites_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title"):
        assert isinstance(cff[key], str) and cff[key].strip(), key
    assert _authors_ok(cff["authors"])
    assert cff["license"] == "MIT"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert str(cff["version"]) == version
    for ref in cff["references"]:
        assert {"type", "title", "authors"} <= set(ref) and _authors_ok(ref["authors"])
    (paper,) = [r for r in cff["references"] if "2504.14727" in str(r.get("identifiers")) + str(r.get("url"))]
    assert paper["title"] == "Semi-parametric Memory Consolidation: Towards Brain-like Deep Continual Learning"
    assert paper["year"] == 2025 and paper["authors"][0] == {"family-names": "Liu", "given-names": "Geng"}
    assert {"type": "doi", "value": "10.48550/arXiv.2504.14727"}.items() <= next(
        i for i in paper["identifiers"] if i["type"] == "doi").items()
