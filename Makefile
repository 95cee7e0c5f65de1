# Two entry points for a fresh machine: `make run` and `make test`.
# Both create .venv at the repository root when it is missing and install the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench stress gpu-check clean

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
	$(PY) -m ruff check app models tests scripts
	$(PY) -m ruff format --check app models tests scripts

RUNS ?= 10
stress: $(STAMP)
	$(PY) scripts/stress_tests.py --runs $(RUNS)

bench: $(STAMP)
	$(PY) -m app bench --arch resnet18 --methods gradcam,gradcam++,smoothgradcam++,scorecam,reciprocam --passes 10 --device cpu --json bench.json

# On a machine with a CUDA GPU (e.g. the lent device, whose python3 already has torch,
# torchvision and OpenCV): the CUDA tests, then the engine and pipeline benchmarks on it.
GPU_PY ?= python3
gpu-check:
	mkdir -p out/gpu
	PYTHONPATH=. $(GPU_PY) -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name())"
	PYTHONPATH=. $(GPU_PY) -m pytest -q -p no:cacheprovider tests/test_explain_cuda.py tests/test_explain_exactness.py
	for arch in resnet18 mobilenet_v2 resnet50; do \
	  PYTHONPATH=. $(GPU_PY) -m app bench --arch $$arch --methods gradcam++,reciprocam,smoothgradcam++ --passes 10 --device cuda --json out/gpu/bench_$$arch.json || exit 1; \
	done
	PYTHONPATH=. $(GPU_PY) -m app bench-pipeline --source ../shared/data/pcle-brain/glioblastoma/GBM_1.mpg --arch resnet18 --mode analysis --passes 10 --frames 300 --device cuda --json out/gpu/pipeline_resnet18.json

clean:
	rm -rf $(VENV) build *.egg-info
