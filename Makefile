# aptt-edu — two commands on a fresh machine:
#   make demo   set up .venv, run the example and the training comparison (writes plots)
#   make test   set up .venv, then ruff, mypy --strict, pytest (with the strict docs build), nbval
#               (worked edition, two kernel choices), and the wheel test (both editions run from
#               an installed wheel)
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch first, pinned to the version CI tests; the package itself asks for torch>=2.3, which the pin
# satisfies, so the second pip call installs no other torch. On a Linux machine without a GPU add
# TORCH_INDEX=https://download.pytorch.org/whl/cpu (PyPI's default Linux wheel is the CUDA build).
TORCH_PIN ?= torch==2.13.0
TORCH_INDEX ?=
TORCH_FROM := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
OUT ?= runs/compare
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup demo test lint lab wheel-test typecheck pytest nbval nbval-learner notebooks docs docs-test serve bench browser clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)" $(TORCH_FROM)
	$(PY) -m pip install --quiet -e ".[dev,docs,notebooks]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) examples/llm_loss_head_example.py
	$(PY) -m aptt_edu compare --out $(OUT)
	@echo "plot: $(OUT)/loss_curves.png  table: $(OUT)/summary.md"

lint: setup
	$(VENV)/bin/ruff check aptt_edu tests examples benchmarks docs/hooks notebooks/build.py notebooks/hosted.py notebooks/src
	$(VENV)/bin/ruff format --check aptt_edu tests examples benchmarks docs/hooks notebooks/build.py notebooks/hosted.py

typecheck: setup
	$(VENV)/bin/mypy --strict aptt_edu
	$(VENV)/bin/mypy --strict --python-version 3.11 notebooks/build.py notebooks/hosted.py docs/hooks

# Debian's chromium for tests/test_docs_site.py; APTT_REQUIRE_BROWSER=1 makes a missing browser
# fail the test instead of skipping it.
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium for the docs browser test"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

pytest: setup browser
	APTT_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests

# Every notebook is a regression test whose compared outputs must be the same on any CPU: run them
# with this machine's SIMD kernels and again with the portable ones (ATEN_CPU_CAPABILITY=default),
# so an output that depends on the kernel choice cannot land. Two notebooks at a time (xdist's
# loadscope keeps the cells of one notebook in one kernel, in order).
NBVAL := APTT_STATIC=1 $(PY) -m pytest -q -n 2 --dist loadscope -p no:cacheprovider --nbval \
	--nbval-sanitize-with notebooks/sanitize.cfg notebooks/en notebooks/de
# The learner edition (notebooks/exercises: stubs, no solutions, no outputs) must run top to bottom
# without an error, every check saying "not solved yet". `make test` runs it once, from the installed
# wheel (wheel-test); `make nbval-learner` runs it here with --nbval-lax, comparing nothing.
NBVAL_LEARNER := APTT_STATIC=1 $(PY) -m pytest -q -n 2 --dist loadscope -p no:cacheprovider \
	--nbval-lax notebooks/exercises/en notebooks/exercises/de
nbval: setup
	$(NBVAL)
	ATEN_CPU_CAPABILITY=default $(NBVAL)

nbval-learner: setup
	$(NBVAL_LEARNER)

test: lint typecheck pytest nbval wheel-test

# Authors: edit notebooks/src/*.py (one bilingual source per notebook), then `make notebooks`.
notebooks: setup
	$(PY) notebooks/build.py
	APTT_STATIC=1 ATEN_CPU_CAPABILITY=default $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace notebooks/en/*.ipynb notebooks/de/*.ipynb

docs: setup
	$(VENV)/bin/mkdocs build --strict

docs-test: setup browser
	APTT_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_docs_site.py

serve: setup
	$(VENV)/bin/mkdocs serve

lab: setup
	$(VENV)/bin/jupyter lab notebooks

# The package as a learner gets it: build sdist + wheel, `twine check --strict`, install the wheel in a
# fresh venv (torch first, as above), copy every notebook out of it with `aptt-edu notebooks` and execute
# them in a temporary folder outside the checkout (.ci/wheel_notebooks).
FRESH := build/fresh-venv
wheel-test: setup
	rm -rf dist $(FRESH)
	$(PY) -m build --outdir dist . >/dev/null
	$(VENV)/bin/twine check --strict dist/*
	$(PY_SYS) -m venv $(FRESH)
	$(FRESH)/bin/pip install --quiet "$(TORCH_PIN)" $(TORCH_FROM)
	$(FRESH)/bin/pip install --quiet "$$(ls dist/*.whl)" ipykernel nbconvert ipywidgets
	@ls -l dist
	bash .ci/wheel_notebooks $(FRESH)

bench: setup
	$(PY) benchmarks/bench_loss.py

clean:
	rm -rf site runs artifacts build dist .cache .pytest_cache .mypy_cache .ruff_cache
