# `make run` and `make test` build .venv on first use (CPU torch wheel pinned in pyproject.toml).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUFF := ruff==0.17.6
MYPY := mypy==2.4.1

.PHONY: run test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lth reproduce --preset mnist1d_mlp_scale  # [SCALE]'s regime, 15 seeds, k = 0 vs k = 50: its plan is the preset's, in src/lth/presets.py

test: $(STAMP)
	$(BIN)/python -m pytest

# While editing: everything but the tests marked slow (real trainings, the SLURM cluster); `make test` before pushing.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# ruff and mypy, pinned here; ruff's rules are in ruff.toml, mypy's settings in pyproject.toml ([tool.mypy]).
# CI (.ci/run) runs it before `make test`.
lint: $(STAMP)
	$(BIN)/python -m pip install -q $(RUFF) $(MYPY)
	$(BIN)/ruff check src tests studies benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/loop_overhead.py
	$(BIN)/python benchmarks/iteration_time.py
	$(BIN)/python benchmarks/replicas.py
	$(BIN)/python benchmarks/interpolation.py
	if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(BIN)/python benchmarks/gpu_resnet20.py && $(BIN)/python benchmarks/interpolation.py --device cuda; else echo "no CUDA device: skipping the GPU benchmarks"; fi

clean:
	rm -rf $(VENV) lth_runs
