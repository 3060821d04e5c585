"""``python -m analysis.report_check results/report.html [--screenshot PNG]``: open the report in
headless Chromium and check that every image loaded (no broken link), every table and figure is
there and nothing overflows the page width; optionally save a screenshot of the whole page.

The report itself carries no script (it stays light and byte-stable): the check loads a temporary
copy, next to nothing but a ``<base>`` pointing at the report's folder and a few lines of JavaScript
that, after the load event, write their findings into the page; ``--dump-dom`` prints the page, and
the findings are read back from it. Exit status 0: all good; 1: a problem (each one printed);
2: Chromium not found."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH = 1280          # CSS pixels: a laptop window
SCREENSHOT_SCALE = 0.5  # the whole page at half size keeps the PNG small
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--allow-file-access-from-files")

PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; })
                   .map(function (i) { return i.getAttribute("src"); });
  var page = document.documentElement.clientWidth;
  var wide = Array.from(document.body.querySelectorAll("*")).filter(function (e) {
    var r = e.getBoundingClientRect();
    return r.width > 0 && r.right > page + 1 && !e.closest(".wide");
  }).map(function (e) { return e.tagName.toLowerCase() + (e.id ? "#" + e.id : ""); });
  var out = {images: imgs.length, broken: broken, tables: document.querySelectorAll("table").length,
             figures: document.querySelectorAll("figure img").length,
             scroll_width: document.documentElement.scrollWidth, page_width: page,
             height: document.documentElement.scrollHeight, overflowing: wide.slice(0, 20)};
  var pre = document.createElement("pre");
  pre.id = "report-check";
  pre.textContent = "REPORT-CHECK " + JSON.stringify(out) + " END";
  document.body.appendChild(pre);
});
</script>"""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chromium: str, args: list[str], timeout: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="report-check-profile-") as profile:  # a fresh profile every time
        return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "HOME": profile})


def probe(report: Path, chromium: str, timeout: int = 120) -> dict:
    """Load a probed copy of ``report`` and return the findings of the page's script."""
    html = report.read_text()
    base = f'<base href="{report.parent.resolve().as_uri()}/">'
    html = html.replace("<head>", "<head>" + base, 1).replace("</body>", PROBE + "</body>", 1)
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html)
        proc = _run(chromium, [f"--window-size={WIDTH},900", "--virtual-time-budget=10000", "--dump-dom",
                               page.as_uri()], timeout)
    found = re.search(r"REPORT-CHECK (\{.*?\}) END", proc.stdout, re.S)
    if not found:
        raise RuntimeError(f"Chromium printed no findings (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return json.loads(found.group(1))


def screenshot(report: Path, chromium: str, out: Path, height: int, timeout: int = 120) -> None:
    """The whole page (``height`` CSS pixels) at ``SCREENSHOT_SCALE``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(chromium, [f"--window-size={WIDTH},{height}", f"--force-device-scale-factor={SCREENSHOT_SCALE}",
                    "--virtual-time-budget=10000", f"--screenshot={out.resolve()}", report.resolve().as_uri()], timeout)
    if not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot to {out}")
    from PIL import Image  # a matplotlib dependency

    with Image.open(out) as im:  # 128 colours are plenty for a page of text and plots; a quarter of the bytes
        small = im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(out, optimize=True)


def problems(found: dict, expected_figures: int | None = None, expected_tables: int | None = None) -> list[str]:
    out = [f"image did not load: {src}" for src in found["broken"]]
    if found["scroll_width"] > found["page_width"] + 1:
        out.append(f"page is {found['scroll_width']} px wide in a {found['page_width']} px window "
                   f"(overflowing: {', '.join(found['overflowing']) or '?'})")
    if expected_figures is not None and found["figures"] != expected_figures:
        out.append(f"{found['figures']} figures shown, {expected_figures} expected")
    if expected_tables is not None and found["tables"] < expected_tables:
        out.append(f"{found['tables']} tables shown, at least {expected_tables} expected")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.report_check", description=__doc__.split("\n\n")[0])
    p.add_argument("report", nargs="?", default="results/report.html")
    p.add_argument("--screenshot", type=Path, default=None, help="save a PNG of the whole page here")
    args = p.parse_args(argv)
    report = Path(args.report)
    if not report.is_file():
        print(f"error: {report} not found; write it with `make figures`", file=sys.stderr)
        return 1
    chromium = find_chromium()
    if chromium is None:
        print("error: no Chromium found (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    from . import outputs

    figures = sum(1 for f in outputs.FIGURES if (report.parent / "figures" / f"{f}.png").is_file())
    found = probe(report, chromium)
    bad = problems(found, expected_figures=figures, expected_tables=1)
    print(f"{report}: {found['images']} images ({len(found['broken'])} broken), {found['tables']} tables, "
          f"{found['figures']} figures, page {found['scroll_width']}/{found['page_width']} px wide, "
          f"{found['height']} px tall")
    if args.screenshot:
        screenshot(report, chromium, args.screenshot, found["height"])
        print(f"screenshot: {args.screenshot}")
    for b in bad:
        print(f"problem: {b}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
