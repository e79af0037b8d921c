# Developer entry points. `make serve` and `make test` are the README's two commands:
# each creates the virtual environment it needs from the project's own requirement files.
PYTHON ?= python3
PORT ?= 8080
PIP_FLAGS ?= --quiet --disable-pip-version-check

RUNTIME := .venv-runtime
DEV := .venv
LEGACY := .venv-legacy

.PHONY: serve test lint pytest pytest-legacy model bench bench-quick clean

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
$(LEGACY)/.installed: requirements-legacy.txt
	$(PYTHON) -m venv $(LEGACY)
	$(LEGACY)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(LEGACY)/bin/pip install $(PIP_FLAGS) -r requirements-legacy.txt
	touch $@

serve: $(RUNTIME)/.installed
	$(RUNTIME)/bin/functions-framework --target predict --source main.py --host 127.0.0.1 --port $(PORT)

lint: $(DEV)/.installed
	$(DEV)/bin/ruff check .
	$(DEV)/bin/ruff format --check .
	$(DEV)/bin/shellcheck deploy.sh .ci/run $(wildcard scripts/*.sh bench/*.sh)

pytest: $(DEV)/.installed
	$(DEV)/bin/python -m pytest

# The serving tests again under tflite-runtime; models are built by the dev environment's TensorFlow.
pytest-legacy: $(LEGACY)/.installed $(DEV)/.installed
	SERVING_BACKEND=tflite_runtime MODEL_BUILDER_PYTHON=$(DEV)/bin/python \
		$(LEGACY)/bin/python -m pytest tests/serving tests/test_main.py

test: lint pytest pytest-legacy

# Rebuild model/quantized_model.tflite: train the digits CNN (fixed seed), quantize via the CLI.
model: $(DEV)/.installed
	$(DEV)/bin/python model/train_digits.py

# Side-by-side benchmark (README "Benchmarks"): writes bench/results.md, .json and .png.
bench: $(DEV)/.installed $(RUNTIME)/.installed
	$(DEV)/bin/python -m bench

# Every measurement, fewer repeats, small models; writes build/bench/quick/ only.
bench-quick: $(DEV)/.installed $(RUNTIME)/.installed
	$(DEV)/bin/python -m bench --quick

clean:
	rm -rf $(RUNTIME) $(DEV) $(LEGACY) .pytest_cache .ruff_cache build
