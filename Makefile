# Two commands set everything up on a fresh machine with Python 3.11:
#   make run    create .venv, install the pinned dependencies, run the quick experiment
#   make test   same install, then the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
# Local jobs are scheduled by the mem_mb every rule declares (conf/resources/) within this budget:
# 90 % of the machine's memory (a job asking for more gets the whole budget, alone).
MEM_MB ?= $(shell awk '/^MemTotal:/ {print int($$2 / 1024 * 0.9)}' /proc/meminfo 2>/dev/null || echo 4000)
SNAKEMAKE := $(BIN)/snakemake --cores $(CORES) --resources mem_mb=$(MEM_MB)

# Stage commands inside Snakemake rules call `python`: make it the venv's.
export PATH := $(abspath $(BIN)):$(PATH)
# albumentations calls the network at import to look for updates unless this is set.
export NO_ALBUMENTATIONS_UPDATE := 1

EXPERIMENT ?= quick
# The directory a run worked in (the tests run the smoke experiment in a temporary one).
WORKDIR ?= .

.PHONY: install run paper smoke test bench lint report dag clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and exactly 2.13.0: the CPU wheel served here; any other pulls CUDA.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# slurm: the executor plugin, so that make test runs the SLURM tests (tests/test_slurm.py).
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,slurm]'
	# auto_LiRPA 0.3 pins torch<1.13; it runs on 2.13 with nnassure.lirpa_compat's patches.
	$(BIN)/python -m pip install --quiet --no-deps auto_LiRPA==0.3
	# onnx2torch 1.5.15 requires torchvision, which does not load beside this torch; it runs
	# without it (nnassure.onnx_compat), so it is installed alone too.
	$(BIN)/python -m pip install --quiet --no-deps onnx2torch==1.5.15
	touch $(STAMP)

install: $(STAMP)

run: install
	$(SNAKEMAKE) --config experiment=quick

paper: install
	$(SNAKEMAKE) --config experiment=paper

smoke: install
	$(SNAKEMAKE) --config experiment=smoke

# CI runs this (.ci/run): lint first, then every test, on one pytest-xdist worker per core
# (tests/conftest.py keeps the end-to-end modules together on one of them).
test: lint
	$(BIN)/python -m pytest -q -n $(CORES)

bench: run
	$(BIN)/python -m nnassure.bench.certify experiment=quick dataset=c train.cost_fn=1 threads=$(CORES)
	$(BIN)/python -m nnassure.bench.proven experiment=quick proven.model=digits_relu_4x128 threads=$(CORES)
	# one solver thread, as the ensemble_row jobs whose times it reports ran
	# (per row: the run's result and the paper's time; the MILP bare and with its shortcuts; big-M)
	$(BIN)/python -m nnassure.bench.ensemble experiment=quick threads=1 --compare-limit 20 --big-m-limit 60 \
		--sweep-limit 20
	$(BIN)/python -m nnassure.bench.video experiment=quick threads=1
	# one torch thread, as the kri_infer jobs ran
	$(BIN)/python -m nnassure.bench.kri experiment=quick threads=1
	# VNN-LIB properties on generated ReLU classifiers: decided per second, and by which method
	$(BIN)/python -m nnassure.bench.vnnlib experiment=quick threads=1
	# what every stage's jobs used against conf/resources/
	$(BIN)/python -m nnassure.bench.resources experiment=quick
	# make run's wall time and where it went, per family, from the same files
	$(BIN)/python -m nnassure.bench.run experiment=quick

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/snakemake --lint --config experiment=smoke

# The HTML report of a finished run: every table and figure with its caption, filed by paper.
report: install
	$(BIN)/snakemake --directory $(WORKDIR) --config experiment=$(EXPERIMENT) \
		--report $(abspath $(WORKDIR))/results/$(EXPERIMENT)/report.html

dag: install
	$(BIN)/snakemake --config experiment=quick --dag > results/dag.dot
	@echo "DAG written to results/dag.dot (render with: dot -Tpng results/dag.dot)"

clean:
	rm -rf results/smoke results/quick results/bench .snakemake
