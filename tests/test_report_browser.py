"""results/report.html in a real browser (headless Chromium): every table and figure is there, every
image loads and nothing overflows the page width; and the check itself notices a broken image and
an overflowing page. Skipped, with the reason, where Chromium is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analysis import outputs, report_check

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "results" / "report.html"

chromium = report_check.find_chromium()
pytestmark = pytest.mark.skipif(chromium is None, reason="no Chromium on this machine (Debian: apt-get install -y "
                                                         "chromium); the report is checked in a browser only where one is")


def test_committed_report_renders_with_every_image_and_table(tmp_path):
    found = report_check.probe(REPORT, chromium)
    assert report_check.problems(found, expected_figures=len(outputs.FIGURES), expected_tables=len(outputs.TABLES)) == []
    shot = tmp_path / "report.png"
    report_check.screenshot(REPORT, chromium, shot, found["height"])
    assert shot.stat().st_size > 10_000


def test_the_check_finds_a_broken_image_and_an_overflowing_page(tmp_path):
    (tmp_path / "figures").mkdir()
    shutil.copy(ROOT / "results" / "figures" / "rate_distortion.png", tmp_path / "figures" / "ok.png")
    page = tmp_path / "report.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
                    '<img src="figures/ok.png"><img src="figures/missing.png">'
                    '<div style="width:5000px">too wide</div></body></html>')
    found = report_check.probe(page, chromium)
    bad = report_check.problems(found)
    assert found["images"] == 2
    assert any("figures/missing.png" in b for b in bad)
    assert any("wide" in b for b in bad)
