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
.PHONY: help install demo train-demo test test-py test-java bench golden es-up es-down plugin clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## make .venv and install dssm-search with its dev extras

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

test-java: ## run the Java plugin's unit tests
	cd es-plugin && JAVA_HOME=$(JAVA25) mvn -B -q test

plugin: ## build the Elasticsearch plugin zip (es-plugin/target/releases)
	@if [ -f es-plugin/pom.xml ]; then cd es-plugin && JAVA_HOME=$(JAVA25) mvn -B -q -DskipTests package; else echo "no es-plugin yet"; fi

es-up: plugin ## start a local single-node Elasticsearch (with the plugin) on 127.0.0.1:9200
	scripts/es.sh up

es-down: ## stop the local Elasticsearch
	scripts/es.sh down

bench: install ## run the benchmarks and write BENCHMARKS.md tables (see benchmarks/README.md)
	$(BIN)/python benchmarks/run_all.py

golden: install ## regenerate tests/golden/ (featuriser cases, tiny model, query vectors)
	$(BIN)/python tests/make_golden.py

clean: ## remove build outputs (keeps .venv)
	rm -rf models indexes runs es-plugin/target build *.egg-info
