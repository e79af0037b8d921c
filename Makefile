# Developer entry points. `make serve` and `make test` are the README's two commands:
# each creates the virtual environment it needs from the project's own requirement files.
PYTHON ?= python3
PORT ?= 8080
PIP_FLAGS ?= --quiet --disable-pip-version-check

RUNTIME := .venv-runtime
DEV := .venv
LEGACY := .venv-legacy
BATCH := .venv-batch

# The Pythons Cloud Run functions deploy to (python312, python313): by default the newest
# pyenv-installed patch release of each, else python3.12 / python3.13 on PATH. Override with
# e.g. `make test PYTHON312=/usr/bin/python3.12`.
PYENV_ROOT ?= $(or $(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)
find_python = $(or $(shell ls -d $(PYENV_ROOT)/versions/$(1).*/bin/python$(1) 2>/dev/null \
	| grep -E '/versions/$(subst .,\.,$(1))\.[0-9]+/' | sort -V | tail -n 1),$(shell command -v python$(1) 2>/dev/null))
PYTHON312 ?= $(call find_python,3.12)
PYTHON313 ?= $(call find_python,3.13)

.PHONY: serve test envs lint pytest pytest-dev-tools pytest-dev-core pytest-legacy pytest-py312 pytest-py313 pytest-batch model examples bench bench-quick bench-weights bench-repository bench-batch clean

# The deployed dependencies only (requirements.txt): what `serve` runs on.
$(RUNTIME)/.installed: requirements.txt
	$(PYTHON) -m venv $(RUNTIME)
	$(RUNTIME)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(RUNTIME)/bin/pip install $(PIP_FLAGS) -r requirements.txt
	touch $@

# Tests, converter (TensorFlow) and benchmark.
$(DEV)/.installed: requirements.txt requirements-dev.txt convert/requirements.txt bench/requirements.txt
	$(PYTHON) -m venv $(DEV)
	$(DEV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(DEV)/bin/pip install $(PIP_FLAGS) -r requirements-dev.txt
	touch $@

# The legacy tflite-runtime backend (numpy < 2, Python <= 3.11).
$(LEGACY)/.installed: requirements-legacy.txt requirements-test.txt
	$(PYTHON) -m venv $(LEGACY)
	$(LEGACY)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(LEGACY)/bin/pip install $(PIP_FLAGS) -r requirements-legacy.txt
	touch $@

# requirements.txt plus the tests' own needs on a deployed Python: .venv-py312, .venv-py313.
# $* is 312 or 313; the interpreter must exist and be that version, or the message says how to
# provide one.
.venv-py%/.installed: requirements.txt requirements-test.txt
	@if [ -z "$(PYTHON$*)" ]; then \
		echo "make: Python $(patsubst 3%,3.%,$*) not found in $(PYENV_ROOT)/versions or on PATH: install it (pyenv install $(patsubst 3%,3.%,$*)) or pass PYTHON$*=/path/to/python$(patsubst 3%,3.%,$*)" >&2; \
		exit 1; \
	elif ! "$(PYTHON$*)" -c 'import sys; sys.exit(f"{sys.version_info[0]}{sys.version_info[1]}" != "$*")' 2>/dev/null; then \
		echo "make: PYTHON$*=$(PYTHON$*) is not a working Python $(patsubst 3%,3.%,$*)" >&2; \
		exit 1; \
	fi
	"$(PYTHON$*)" -m venv .venv-py$*
	.venv-py$*/bin/pip install $(PIP_FLAGS) --upgrade pip
	.venv-py$*/bin/pip install $(PIP_FLAGS) -r requirements.txt -r requirements-test.txt
	touch $@

# `python -m batch` on Apache Beam: batch/requirements.txt (Beam pins pillow<13, protobuf<7)
# plus the tests' needs. No TensorFlow: fixture models are built by the dev environment.
$(BATCH)/.installed: batch/requirements.txt batch/requirements-worker.txt requirements-test.txt
	$(PYTHON) -m venv $(BATCH)
	$(BATCH)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(BATCH)/bin/pip install $(PIP_FLAGS) -r batch/requirements.txt -r requirements-test.txt
	touch $@

# functions-framework's gunicorn logs only errors, so the address is said here, before the server starts.
serve: $(RUNTIME)/.installed
	@echo "make serve: serving on http://127.0.0.1:$(PORT) (try: curl http://127.0.0.1:$(PORT)/v2/health/ready)"
	$(RUNTIME)/bin/functions-framework --target predict --source main.py --host 127.0.0.1 --port $(PORT)

lint: $(DEV)/.installed
	$(DEV)/bin/ruff check .
	$(DEV)/bin/ruff format --check .
	$(DEV)/bin/shellcheck deploy.sh .ci/run $(wildcard scripts/*.sh bench/*.sh)

# Every test in the dev environment, in two runs that `make test` runs side by side: the
# deploy, convert and benchmark tests (subprocesses and TensorFlow), and all the others.
DEV_TOOLS_TESTS := tests/deploy tests/convert tests/bench
pytest: pytest-dev-tools pytest-dev-core

pytest-dev-tools: $(DEV)/.installed
	$(DEV)/bin/python -m pytest $(DEV_TOOLS_TESTS)

pytest-dev-core: $(DEV)/.installed
	$(DEV)/bin/python -m pytest $(addprefix --ignore=,$(DEV_TOOLS_TESTS))

# The serving tests again under tflite-runtime; models are built by the dev environment's TensorFlow.
pytest-legacy: $(LEGACY)/.installed $(DEV)/.installed
	SERVING_BACKEND=tflite_runtime MODEL_BUILDER_PYTHON=$(DEV)/bin/python \
		$(LEGACY)/bin/python -m pytest tests/serving tests/test_main.py

# The serving tests on each Python the function deploys to, with exactly the deployed dependencies.
pytest-py312 pytest-py313: pytest-py%: .venv-py%/.installed $(DEV)/.installed
	MODEL_BUILDER_PYTHON=$(DEV)/bin/python .venv-py$*/bin/python -m pytest tests/serving tests/test_main.py

# The batch tests in the batch environment; models are built by the dev environment's TensorFlow.
# The main.py import check runs here too: this is the environment that has Beam to leak.
pytest-batch: $(BATCH)/.installed $(DEV)/.installed
	MODEL_BUILDER_PYTHON=$(DEV)/bin/python $(BATCH)/bin/python -m pytest tests/batch \
		tests/test_main.py::test_importing_main_loads_nothing_heavy

# Every environment, built in parallel (each pip's output is kept whole by --output-sync);
# then the test runs, two at a time (the dev environment's two, the longest, first; their
# servers wait on sockets as much as they compute), each one's output kept whole.
# TEST_JOBS=1 runs them one after another.
TEST_JOBS ?= 2
ENVS := $(DEV)/.installed $(LEGACY)/.installed .venv-py312/.installed .venv-py313/.installed \
	$(BATCH)/.installed
envs:
	$(MAKE) -j $(words $(ENVS)) --output-sync=target $(ENVS)

test: envs
	$(MAKE) -j $(TEST_JOBS) --output-sync=target pytest-dev-core pytest-dev-tools lint \
		pytest-legacy pytest-py312 pytest-py313 pytest-batch

# Rebuild model/quantized_model.tflite: train the digits CNN (fixed seed), quantize via the CLI.
model: $(DEV)/.installed
	$(DEV)/bin/python model/train_digits.py

# Rewrite the README's example pictures model/examples/<digit>.png from scikit-learn's digits.
examples: $(DEV)/.installed
	$(DEV)/bin/python model/examples/make_examples.py

# Side-by-side benchmark (docs/benchmarks.md): writes bench/results.md, .json and .png.
bench: $(DEV)/.installed $(RUNTIME)/.installed
	$(DEV)/bin/python -m bench

# One copy of the weights (bench/weights.md): real-size MLPs as deploy.sh deploys them.
# BEFORE=<git revision> also measures that revision of the function, for a before/after.
bench-weights: $(DEV)/.installed $(RUNTIME)/.installed
	$(DEV)/bin/python -m bench.weights $(if $(BEFORE),--before $(BEFORE))

# The model repository (bench/repository.md): cold start of 10 models vs one, eviction round-robin.
bench-repository: $(DEV)/.installed $(RUNTIME)/.installed
	$(DEV)/bin/python -m bench.repository

# Batch prediction figures (docs/batch.md): per-row cost and pictures vs. bare invoke.
bench-batch: $(BATCH)/.installed $(DEV)/.installed
	MODEL_BUILDER_PYTHON=$(DEV)/bin/python $(BATCH)/bin/python -m bench.batch

# Every measurement, fewer repeats, small models; writes build/bench/quick/ only.
bench-quick: $(DEV)/.installed $(RUNTIME)/.installed
	$(DEV)/bin/python -m bench --quick

clean:
	rm -rf $(RUNTIME) $(DEV) $(LEGACY) $(BATCH) .venv-py312 .venv-py313 .pytest_cache .ruff_cache build
