"""The Snakemake workflow: dry runs of the shipped configs, a micro grid end to end, the
results-only target, failure handling, and (test_workflow_slurm.py) a real SLURM run."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MICRO = REPO / "tests" / "workflow" / "micro.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def snakemake(*args, cwd, timeout=900, check=True):
    out = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    if check and out.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def job_counts(output: str) -> dict:
    """Parse the 'Job stats' table of a dry run."""
    counts = {}
    for line in output.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def expected_train_jobs(cfgfile: Path) -> int:
    from braincl.registry import METHODS

    cfg = yaml.safe_load(cfgfile.read_text())
    total = 0
    for entry in cfg["grid"]:
        for m in entry["methods"]:
            budgets = len(entry["budgets"]) if METHODS.get(m).needs_budget else 1
            total += budgets * len(entry["seeds"])
    return total


@pytest.mark.parametrize("cfgfile", ["config/config.yaml", "config/paper.yaml"])
def test_dry_run_lists_the_grid(cfgfile, tmp_path):
    path = REPO / cfgfile
    if not path.exists():
        pytest.fail(f"{cfgfile} is missing")
    out = snakemake("all", "-n", "--cores", "2", "--configfile", str(path), cwd=tmp_path)
    counts = job_counts(out.stdout)
    assert counts.get("train") == expected_train_jobs(path)
    assert counts.get("analysis") == 1


def test_unknown_method_rejected_before_any_job(tmp_path):
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["grid"][0]["methods"] = ["er", "nosuchmethod"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = snakemake("all", "-n", "--cores", "1", "--configfile", str(bad), cwd=tmp_path, check=False)
    assert out.returncode != 0
    assert "unknown method(s) nosuchmethod; valid:" in out.stdout + out.stderr
    assert "finetune" in out.stdout + out.stderr


def test_schema_rejects_malformed_grid(tmp_path):
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["grid"][0]["seeds"] = ["zero"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = snakemake("all", "-n", "--cores", "1", "--configfile", str(bad), cwd=tmp_path, check=False)
    assert out.returncode != 0 and "zero" in out.stdout + out.stderr


@pytest.mark.parametrize("sdm, message", [
    ("apptainer", "container image braincl-bench.sif not found: build it from Containerfile"),
    ("conda", "--sdm conda runs the suite's code from the working directory: run Snakemake from"),
])
def test_software_deployment_refuses_what_cannot_run(sdm, message, tmp_path):
    """--sdm apptainer without the image, and --sdm conda outside the repository root (the conda
    environment holds the libraries, the checkout the code), stop at parse time with one line."""
    out = snakemake("figures", "-n", "--configfile", str(MICRO), "--sdm", sdm, cwd=tmp_path, check=False)
    assert out.returncode != 0
    assert message in out.stdout + out.stderr


@pytest.mark.slow
def test_micro_grid_end_to_end_then_figures_never_retrain(tmp_path):
    snakemake("all", "--cores", "2", "--configfile", str(MICRO), cwd=tmp_path)
    runs = sorted(tmp_path.glob("results/runs/**/metrics.json"))
    assert len(runs) == 2
    for run in runs:
        record = json.loads(run.read_text())
        assert record["run"]["dataset"] == "mnist5k"
        assert (run.parent / "train.log").exists() and not (run.parent / "checkpoint.pt").exists()
    assert (tmp_path / "results" / "tables" / "main.md").exists()
    assert (tmp_path / "results" / "figures" / "accuracy_curves.png").exists()
    assert (tmp_path / "results" / "report.html").exists()

    # Change what training depends on (a training parameter): `all` now wants to retrain ...
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["grid"][0]["set"]["train.epochs"] = 2
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    dry = snakemake("all", "-n", "--cores", "1", "--configfile", str(changed), cwd=tmp_path)
    assert job_counts(dry.stdout).get("train") == 2
    # ... but the results-only target rebuilds the figures from the cached records and trains nothing.
    mtimes = {p: p.stat().st_mtime_ns for p in runs}
    figure = tmp_path / "results" / "figures" / "accuracy_curves.png"
    figure.unlink()
    out = snakemake("figures", "--cores", "1", "--configfile", str(changed), cwd=tmp_path)
    assert "rule train" not in out.stdout + out.stderr
    assert figure.exists()
    assert {p: p.stat().st_mtime_ns for p in runs} == mtimes


@pytest.mark.slow
def test_failed_job_leaves_no_metrics_and_the_rest_completes(tmp_path):
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["grid"][0]["budgets"] = ["1KB"]  # too small for one exemplar per class: er fails at start
    bad = tmp_path / "fail.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = snakemake("all", "--cores", "2", "--configfile", str(bad), cwd=tmp_path, check=False)
    assert out.returncode != 0
    failed = tmp_path / "results/runs/mnist5k/cil/er/1KB/seed0"
    assert not (failed / "metrics.json").exists()
    assert "cannot hold one exemplar" in (failed / "train.log").read_text()
    assert (tmp_path / "results/runs/mnist5k/cil/finetune/none/seed0/metrics.json").exists()


@pytest.mark.parametrize("target", ["ablations", "controls", "training_length", "robustness", "budget_curve"])
def test_claims_targets_dry_run(target, tmp_path):
    """Each issue-13 target expands its runs and ends in its own analysis rule. Its tables and figures
    already on disk (as in a clone with committed results) must not stop it training missing runs."""
    from analysis import outputs

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for path in outputs.all_paths(tmp_path / "results", [target]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("committed")
    out = snakemake(target, "-n", "--cores", "2", "--configfile", str(REPO / "config" / "config.yaml"), cwd=tmp_path)
    counts = job_counts(out.stdout)
    assert counts.get(target) == 1
    assert counts.get("train", 0) >= len(cfg["targets"][target])


def _report_captions(report_html: str) -> dict:
    """Result path -> caption (plain text) of a `snakemake --report` HTML file, read from the JSON
    the report embeds for each result."""
    import html

    captions = {}
    entry = re.compile(r'"([^"]+)": \{"name": "[^"]*", "filename": "[^"]*", "labels": [^}]*\}?, "size": "[^"]*", '
                       r'"caption": "((?:[^"\\]|\\.)*)"')
    for path, caption in entry.findall(report_html):
        text = html.unescape(re.sub(r"<[^>]+>", "", json.loads(f'"{caption}"')))
        captions[path] = " ".join(text.split())
    return captions


@pytest.mark.slow
def test_report_of_the_committed_results(tmp_path):
    """`snakemake --report` on the committed records, as in a fresh clone (no Snakemake metadata):
    one self-contained file with every table and figure of `all`, the claims targets and the
    reference, each figure with its caption from analysis/captions/. It reads the results and
    writes nothing under them."""
    from analysis import outputs

    results = REPO / "results"
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in results.rglob("*") if p.is_file()}
    report = tmp_path / "report.html"
    snakemake("all", "claims", "reference", "--report", str(report), "--configfile", str(REPO / "config" / "config.yaml"),
              "--config", f"runs_dir={results / 'runs'}", f"results_dir={results}",
              f"benchmarks_dir={results / 'benchmarks'}", cwd=tmp_path, timeout=600)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in results.rglob("*") if p.is_file()} == before

    captions = _report_captions(report.read_text())
    for figure in outputs.FIGURES:
        expected = " ".join(outputs.caption_path(figure).read_text().replace("``", "").split())
        assert captions.get(str(results / "figures" / f"{figure}.png")) == expected, figure
    tables = [*outputs.TABLES, "reference_seq_mnist"]
    for table in tables:
        for ext in ("md", "csv"):
            assert str(results / "tables" / f"{table}.{ext}") in captions, f"{table}.{ext} missing from the report"
    assert str(results / "claims.md") in captions
    assert len(captions) == len(outputs.FIGURES) + 2 * len(tables) + 1
