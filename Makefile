# Set-up is implicit: every target creates (or reuses) .venv and installs the suite into it.
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.braincl-installed

.PHONY: run rerun test figures report report-check headline full controls training-length reference claims dry-run paper-dry-run paper-shape install

install: $(STAMP)

# One pip call for the whole pinned set: installing piecemeal lets pip upgrade numpy past
# compressai's numpy<2 pin.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

## The main job: the default grid (MNIST 5k, 7 methods, 2 budgets, 3 seeds), tables, figures, report.
run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) all

## The same, retraining every run even where a cached metrics.json exists.
rerun: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) all --forcerun train

## The test suite (CI runs exactly this).
test: $(STAMP)
	$(BIN)/python -m pytest

## Tables and figures from the metrics.json files under results/, without training.
figures: $(STAMP)
	$(BIN)/snakemake --cores 1 figures

# The analysis writes results/report.html itself (light, byte-stable); this only regenerates it.
report: figures

## Open results/report.html in headless Chromium: every image loads, nothing overflows the page width.
report-check: $(STAMP)
	$(BIN)/python -m analysis.report_check results/report.html --screenshot results/benchmarks/report_screenshot.png

## Run groups beyond the default grid (config/config.yaml `targets:`), each followed by its tables.
## headline: the default grid at five seeds, which the committed tables and claims use.
headline: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) headline

full: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) full

controls: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) controls

training-length: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) training_length

reference: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) reference

claims: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) claims

dry-run: $(STAMP)
	$(BIN)/snakemake -n --cores $(CORES) all

paper-dry-run: $(STAMP)
	$(BIN)/snakemake all -n --profile profiles/slurm --configfile config/paper.yaml

## Every paper experiment file run for real on this machine at its true shape (image counts cut; see
## docs/paper_grid.md), then the cost model and the SLURM resources that the paper grid reads.
paper-shape: $(STAMP)
	$(BIN)/python benchmarks/paper_shape.py --out results/benchmarks/paper_shape
	$(BIN)/python benchmarks/cost_model.py --out results/benchmarks/cost_model_paper --resources config/resources_paper.yaml
