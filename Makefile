# stn_fovea: `make train` (set up + default experiment) and `make test` (set up + tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONSTRAINTS ?= constraints.txt

# Offline data: use ../shared/data when it exists (this project's machines), else ./data (downloaded).
ifneq ($(wildcard ../shared/data/MNIST/raw),)
export STN_FOVEA_DATA ?= $(abspath ../shared/data)
endif

.PHONY: install train test test-slow lint docs bench study reproduce tensorboard clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch's CUDA wheels are GBs: a broken download is resumed, then the whole install retried (cached)
	for attempt in 1 2 3; do \
	  $(PY) -m pip install --quiet --resume-retries 20 $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev,docs,sweep,hpo,loggers]' \
	    && break; \
	  [ $$attempt = 3 ] && exit 1; echo "pip install failed (attempt $$attempt of 3): retrying"; \
	done
	touch $(STAMP)

train: install
	$(PY) -m stn_fovea.train experiment=quick $(ARGS)

test: install
	$(PY) -m pytest $(ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(ARGS)

lint: install
	$(VENV)/bin/ruff check stn_fovea tests
	$(VENV)/bin/ruff format --check stn_fovea tests

docs: install   # the documentation site: site/index.html (strict: a broken link or page fails)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: install
	$(PY) -m stn_fovea.bench $(ARGS)

study: install   # the whole CPU study (hours; resumable): What, What/Where, STNs, benchmark
	PY=$(PY) bash scripts/study_cpu.sh

reproduce: install   # every zoo model on the reference grid, then docs/study_benchmark.{png,md,csv}
	$(PY) -m stn_fovea.zoo reproduce

tensorboard: install
	$(VENV)/bin/tensorboard --logdir outputs

clean:
	rm -rf $(VENV) .pytest_cache site
