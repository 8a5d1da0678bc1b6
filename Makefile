# Two commands: `make install` then `make test`. Everything a fresh machine needs is set up here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first and pinned: otherwise lightning/peft resolve the newest CUDA build (several GB).
TORCH_PIN ?= torch==2.13.0

.PHONY: install test lint format run clean
install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[dev]" "$(TORCH_PIN)"

test:
	$(BIN)/python -m pytest -q --durations=30

lint:
	$(BIN)/ruff check trainer hydra_plugins tests benchmarks scripts
	$(BIN)/ruff format --check trainer hydra_plugins tests benchmarks scripts

format:
	$(BIN)/ruff format trainer hydra_plugins tests benchmarks scripts
	$(BIN)/ruff check --fix trainer hydra_plugins tests benchmarks scripts

run:
	$(BIN)/python -m trainer

clean:
	rm -rf outputs .pytest_cache
