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

# In parallel, one worker per core (pytest-xdist): most tests wait on subprocesses and sockets, so the
# suite is ~2x faster on 2 cores. --dist loadgroup keeps each xdist_group (the wheel's venv) on one worker.
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist loadgroup

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
