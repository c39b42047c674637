# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and (re)install only when pyproject.toml or constraints.txt changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ooc-bench-installed
export HF_HUB_OFFLINE ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test demo freeze clean-results

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The demo's two generator fits (and its classifier cells) run side by side, one thread each, on 2 cores.
demo: $(STAMP)
	OOC_BENCH_THREADS=1 $(VENV)/bin/ooc-bench run --spec benchmarks/demo.toml --jobs 2

clean-results:
	find results -mindepth 1 ! -name README.md -exec rm -rf {} +

freeze: $(STAMP)
	{ sed -n '1,5p' constraints.txt; echo "# Everything else pinned to the versions the test suite was run with (regenerate: make freeze)."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -E '^(torch|torchvision)=='; } > constraints.txt.new && mv constraints.txt.new constraints.txt
