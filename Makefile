# Every target that runs code first makes sure .venv exists and holds the project.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench profile lint sim clean faultrun dist docs

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m qfex_oms demo

# In parallel (pytest-xdist), one worker more than there are cores: a worker spends about half its time
# waiting on subprocesses and sockets (on 2 cores: 2 workers 180 s, 3 workers 160 s, 1 worker 370 s).
# --dist loadgroup keeps each xdist_group (the wheel's venv) on one worker. make test WORKERS=0: no workers.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check qfex_oms tests bench strategies
	$(BIN)/mypy

# The seeded random-fault run at full size (the suite runs a few seeds): make faultrun SEEDS=300
SEEDS ?= 300
faultrun: $(STAMP)
	QFEX_FAULT_SEEDS=$(SEEDS) $(BIN)/python -m pytest -q -p no:cacheprovider tests/faultrun

bench: $(STAMP)
	$(BIN)/python -m bench

# make profile ROWS=3: the rows' client side under pyinstrument; the report goes to bench/results/.
ROWS ?= 1
profile: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,profile]'
	$(BIN)/python -m bench --rows $(ROWS) --profile

sim: $(STAMP)
	$(BIN)/qfex-oms sim --host 127.0.0.1 --port 8765

# The wheel users install (tests/app/test_wheel.py installs it in a clean venv and runs it).
dist: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation -w dist .

# The user documentation (mkdocs.yml, docs/), warnings as errors, into build/docs (make test builds
# it too: tests/docs/test_docs_build.py). Browse it with: $(BIN)/mkdocs serve
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build dist *.egg-info
