# Two entry points for a fresh machine: `make run` and `make test`.
# Both create .venv at the repository root when it is missing and install the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m app run

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check app models tests
	$(PY) -m ruff format --check app models tests

bench: $(STAMP)
	$(PY) -m app bench --arch resnet18 --methods gradcam,gradcam++,smoothgradcam++,scorecam,reciprocam --passes 10 --device cpu --json bench.json

clean:
	rm -rf $(VENV) build *.egg-info
