# Each target does its own set-up (.ci/setup: a .venv with the package; for the tests also
# mosquitto and chromium from apt when missing).
.PHONY: serve run test lint bench setup figures

NETWORK ?= examples/seed.toml
BROKER ?= auto

setup:
	@bash .ci/setup

serve: setup
	.venv/bin/spikestream serve $(NETWORK) --broker $(BROKER)

run: setup
	.venv/bin/spikestream run $(NETWORK) --duration 10 --out seed.npz --plot seed.png

test:
	@bash .ci/setup --tests
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench: setup
	.venv/bin/python -m pip install -q -e '.[dev,bench]'
	.venv/bin/python bench/offline.py

# The example figures quoted in README.md, measured again (bench/readme_figures.py).
figures: setup
	.venv/bin/python bench/readme_figures.py --write
