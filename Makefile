# Two commands for a newcomer: `make run` (set up, then start Loci) and `make test`.
# Both are idempotent; when everything is installed they start in a second.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.loci-installed
# Portable llama.cpp build (no -march=native) so the same wheel can go into installers.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: run test lint test-reliability install system-deps bench service-bench demo screenshots clean package

run: install
	$(PY) -m app

demo: install
	$(PY) -m app.cli demo

test: install lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# ruff (errors, likely bugs), mypy (strict on engine/) and import-linter (the layout's contracts) as in
# pyproject.toml; `make test` runs all three first
lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
# Fault injection (SIGKILLs, a full tmpfs, damaged files, fuzzing); prints its figures at the end.
test-reliability: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m reliability tests/reliability

install: system-deps $(STAMP)

system-deps:
	@sh packaging/linux/system-deps.sh

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build; anything unpinned would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

bench: install
	$(PY) bench/core_bench.py

service-bench: install
	$(PY) bench/service_bench.py

screenshots: install
	$(PY) bench/screenshots.py

clean:
	rm -rf $(VENV)

# Installers (packaging/README.md): the PyInstaller folder with the models inside, then the
# .tar.gz and .deb on Linux (.dmg / Windows installer in .github/workflows/release.yml).
package: install
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q -e '.[package]'
	$(PY) packaging/build.py
	$(PY) packaging/report.py --no-timings
