# Two commands set up and use a fresh clone: `make train ENV=cnn2_fmnist` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Data folder: whatever the user exported, else a `shared/data` copy beside the checkout when there
# is one, else nothing: the datasets are then downloaded on first use into ~/.cache/ganno_jax/data
# (README "Data"). `make test` first finds or fetches the datasets the tests read (`make data`), then
# requires them (GANNO_REQUIRE_DATA=1): a real-data test fails, naming the folder, rather than skip.
GANNO_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
ifneq ($(GANNO_DATA_DIR),)
export GANNO_DATA_DIR
endif

ENV ?= cnn2_fmnist
PRESET ?= cpu
AGENT ?= ganno
SEED ?= 0
OUT ?= runs/$(ENV)-$(AGENT)-$(PRESET)-s$(SEED)-$(shell date +%Y%m%d-%H%M%S)
BENCH_OUT ?= benchmarks/results/throughput-$(PRESET).json

.PHONY: install data train evaluate benchmark test test-slow test-distributed bench bench-torch bench-parts clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(PY) -m ganno_jax.train --env $(ENV) --preset $(PRESET) --agent $(AGENT) --seed $(SEED) --out $(OUT) $(ARGS)

# Evaluate a run (or policy file) against baselines: `make evaluate CKPT=runs/RUN [ENV=...] OUT=DIR ARGS=...`.
# ENV defaults to the checkpoint's training env when not given on the command line.
# OUT defaults to a new folder inside the run (for a policy file, runs/<file name>-<target>-<time>).
EVAL_ENV = $(if $(filter command line environment,$(origin ENV)),--env $(ENV),)
EVAL_HOME = $(if $(wildcard $(CKPT)/.),$(CKPT)/$@,runs/$(basename $(notdir $(CKPT)))-$@)
EVAL_OUT = $(if $(filter command line environment,$(origin OUT)),$(OUT),$(EVAL_HOME)-$(shell date +%Y%m%d-%H%M%S))
evaluate: $(STAMP)
	$(PY) -m ganno_jax.evaluate --ckpt $(CKPT) $(EVAL_ENV) --out $(EVAL_OUT) $(ARGS)

# The CPU benchmark (README "Benchmark"): `make benchmark CKPT=runs/RUN [ENV=mlp5_fmnist] OUT=DIR`,
# summary.json with paired differences; in-distribution unless ENV is given.
benchmark: $(STAMP)
	$(PY) -m ganno_jax.evaluate --ckpt $(CKPT) $(EVAL_ENV) --benchmark --out $(EVAL_OUT) $(ARGS)

# The datasets the tests read, found where training finds them or downloaded once (verified);
# offline and absent: one line saying how to provide them, exit 2.
TEST_DATASETS := fashion_mnist mnist
data: $(STAMP)
	$(PY) -m ganno_jax.data $(TEST_DATASETS)

# One pytest worker per core (TEST_WORKERS=0: in this process); a file's tests stay on one worker,
# so a module's trained-run fixture is built once. Most of a test's time is XLA compiling, which
# runs on one thread, so two workers use both cores.
TEST_WORKERS ?= 2
test: data
	GANNO_REQUIRE_DATA=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-slow: data
	GANNO_REQUIRE_DATA=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m slow

# Training and evaluation over 2 processes on 127.0.0.1 (JAX's distributed runtime, gloo on CPU).
test-distributed: data
	GANNO_REQUIRE_DATA=1 $(PY) -m pytest -q -m distributed

# Throughput, one JSON with the device named: plain vs deployment vs training, scaling, FLOP/s.
# `make bench [PRESET=smoke|cpu|gpu] [BENCH_OUT=file.json]`; the default PRESET is cpu.
bench: $(STAMP)
	$(PY) -m benchmarks.throughput --preset $(PRESET) --out $(BENCH_OUT)

# The same JSON with PyTorch eager measured in the same run: installs the pinned torch into the
# venv first, from the package registry (the development machines serve its CPU build from a
# local file; elsewhere PyPI's default build, with CUDA, is larger but measures the same on CPU).
bench-torch: $(STAMP)
	$(PY) -m pip install -q 'torch==2.13.0'
	$(PY) -m benchmarks.throughput --preset $(PRESET) --out $(BENCH_OUT)

# The inner step alone (our layers vs plain optax vs nn.Conv) and the env under a random policy.
bench-parts: $(STAMP)
	$(PY) -m benchmarks.inner_step --out benchmarks/results/inner_step-local.json
	$(PY) -m benchmarks.env_throughput --tau 20 --steps 2 --envs 1,4 \
		--out benchmarks/results/env_throughput-local.json

clean:
	rm -rf $(VENV) .pytest_cache
