# gbench: `make test` and `make demo` set up .venv on a fresh machine and run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo install clean bench docs

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(MAKE) docs
	$(PY) -m pytest -q

# the manual (docs/, mkdocs.yml) into site/; --strict: a broken link, reference or page fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

demo: $(STAMP)
	$(VENV)/bin/gbench demo --out runs/demo

bench: $(STAMP)
	$(PY) benchmarks/bench_masks.py
	$(PY) benchmarks/bench_instance.py
	$(PY) benchmarks/bench_labels.py
	$(PY) benchmarks/bench_quality.py
	$(PY) benchmarks/bench_generators.py
	$(PY) benchmarks/bench_segment.py
	$(PY) benchmarks/bench_demo.py
	$(PY) benchmarks/bench_stats.py

clean:
	rm -rf $(VENV) runs .pytest_cache site
