# Two commands from a fresh clone: `make serve` and `make test`. `make help` lists every
# target (its `##` comment) and variable (the `##` lines below); tests/unit/test_makefile.py
# checks none is missing and docs/configuration.md lists every variable.
#
## MODEL          serve: your .keras/.h5 model file (default: the demo)
## LABELS         serve: your classifier's class names, comma-separated or a JSON file
## TASK           serve: classification, binary, multilabel or regression (default: detected)
## FEATURES       serve: encoded feature names, JSON (inline or a file)
## PREPROCESSING  serve: preprocessing spec JSON (raw-record support)
## OUTPUTS        serve: a regression model's output names
## NAME           serve: the model's name (default: the file's stem)
## HEADS          serve: JSON per output head of a several-output model, e.g. '{"default": {"task": "binary"}}'
## SAMPLE         serve: training records (.csv/.jsonl/.json) whose statistics turn on range checks
## S3_PORT        serve: moto S3's port (default 5000; 0 picks a free one)
## API_PORT       serve: chalice local's port (default 8000; 0 picks a free one)
## INPUT          batch: a .csv or .jsonl file to score (default: demo rows)
## WORKERS        batch: worker processes (default 2)
## ROWS           batch: rows of the demo file (default 100000)
## PASS_THROUGH   batch: columns copied into every output line, comma-separated
## IGNORE_EXTRA   batch: 1 ignores columns that are not model fields
## FLAVOR         vendor, package: the runtime, lite or tensorflow (default lite)
## FORMAT         package: cloudformation or terraform (default cloudformation)
## STAGE          vendor, package, deploy: a stage of .chalice/config.json
## API_KEY        package: 1 puts the API behind an API key and usage plan
## JOBS           test, test-fast: pytest-xdist workers (default auto: one per core)
## PYTHON312      venv, lock: the Python 3.12 interpreter (default: found on PATH, pyenv, ...)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLAVOR ?= lite
FORMAT ?= cloudformation
JOBS ?= auto
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt | cksum | cut -d' ' -f1)
TYPED := app.py project_paths.py chalicelib modelops localdev deployment layer_build benchmarks tests

.PHONY: help serve batch test test-fast lint docs bench package deploy vendor venv lock clean

help: ## this list: every target and variable, one line each
	@echo 'make TARGET [VARIABLE=value ...]'; echo; echo 'Targets:'
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(firstword $(MAKEFILE_LIST))
	@echo; echo 'Variables:'
	@awk '/^## [A-Z0-9_]+ / {n = $$2; sub(/^## [A-Z0-9_]+ +/, ""); printf "  %-14s %s\n", n, $$0}' \
	  $(firstword $(MAKEFILE_LIST))

venv: $(STAMP) ## the .venv (Python 3.12) with the pinned development packages

$(STAMP): requirements/dev.txt
	@python312=$$(scripts/find-python312) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then \
	  echo "==> creating $(VENV) with $$python312"; rm -rf $(VENV); "$$python312" -m venv $(VENV) || exit 1; \
	fi
	@echo "==> installing pinned development dependencies (TensorFlow is large: about two minutes)"
	$(PY) -m pip install --disable-pip-version-check -r requirements/dev.txt 2>&1 \
	  | { grep -v "^WARNING: Location" || true; }; exit $${PIPESTATUS[0]}
	@rm -f $(VENV)/.installed-*; touch $@

# Each serve variable is passed on only when given on make's command line (MODEL, NAME
# and TASK are common environment names); its value travels in the environment, so JSON
# and paths need no extra quoting.
serve_option = $(if $(filter command line,$(origin $(1))),$(2) "$$$(1)")

SERVE_ARGS = $(strip $(call serve_option,MODEL,--model) $(call serve_option,LABELS,--labels) \
  $(call serve_option,TASK,--task) $(call serve_option,FEATURES,--features) \
  $(call serve_option,PREPROCESSING,--preprocessing) $(call serve_option,OUTPUTS,--outputs) \
  $(call serve_option,HEADS,--heads) \
  $(call serve_option,NAME,--name) $(call serve_option,SAMPLE,--sample) \
  $(call serve_option,S3_PORT,--s3-port) \
  $(call serve_option,API_PORT,--api-port))

# Option -> make variable, per command: its one-line errors name the variables
# (modelops/cli_errors.py). Exported to the recipes only, never to `make test`.
serve: export MAKE_VARIABLES := --model=MODEL --labels=LABELS --task=TASK --features=FEATURES \
  --preprocessing=PREPROCESSING --outputs=OUTPUTS --heads=HEADS --name=NAME --sample=SAMPLE --s3-port=S3_PORT \
  --api-port=API_PORT
batch: export MAKE_VARIABLES := --input=INPUT --workers=WORKERS --rows=ROWS \
  --pass-through=PASS_THROUGH --ignore-extra-columns=IGNORE_EXTRA
vendor package deploy: export MAKE_VARIABLES := --flavor=FLAVOR --format=FORMAT --stage=STAGE \
  --api-key=API_KEY

serve: venv ## moto S3, the demo (or MODEL=) published, chalice local; Ctrl-C stops it all
	$(PY) -m localdev.stack $(SERVE_ARGS)

batch: venv ## score a file locally as Lambda would (INPUT= WORKERS= ROWS= PASS_THROUGH= IGNORE_EXTRA=)
	@$(PY) -m localdev.batch $(if $(INPUT),--input "$(INPUT)") $(if $(WORKERS),--workers "$(WORKERS)") \
	  $(if $(ROWS),--rows "$(ROWS)") $(if $(PASS_THROUGH),--pass-through "$(PASS_THROUGH)") \
	  $(if $(filter-out 0,$(IGNORE_EXTRA)),--ignore-extra-columns)

# Tests run in JOBS pytest-xdist workers, each with its own moto server and chalice local
# (ports the kernel picks); a file with a module-scoped fixture runs in one worker, other
# tests spread (--dist loadgroup, scheduled by tests/conftest.py); runtimes, packages and
# the trained test model are made once under a file lock.
PYTEST := $(PY) -m pytest -n $(JOBS) --dist loadgroup

# Tests and benchmarks run with a private TMPDIR (pytest's folders, TensorFlow's autograph
# files, subprocesses, the model cache) removed when they end: nothing is left in /tmp.
IN_PRIVATE_TMP = tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && export TMPDIR="$$tmp" \
  MODEL_CACHE_DIR="$$tmp/model-cache" &&

test: venv ## the whole suite: unit, functional, api, deploy, Lambda-like (JOBS=)
	@echo "$(PYTEST)"; $(IN_PRIVATE_TMP) $(PYTEST)

test-fast: venv ## the inner loop: all but the deploy, Lambda-like and slow tests (JOBS=)
	@echo "$(PYTEST) -m \"not lambda_like and not deploy and not slow\""; \
	  $(IN_PRIVATE_TMP) $(PYTEST) -m "not lambda_like and not deploy and not slow"

lint: venv ## ruff, ruff format --check, mypy, and the docs built strictly
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy $(TYPED)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --quiet

docs: venv ## the docs site (MkDocs, strict: a broken link or anchor fails) into build/site
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --quiet

bench: venv ## every benchmark table (minutes; see docs/benchmarks.md)
	@$(IN_PRIVATE_TMP) $(PY) -m benchmarks

# STAGE: built for the stage's lambda_architecture. The one step before a plain
# `chalice deploy --stage S` or `chalice package --stage S`.
vendor: venv ## the runtime Chalice puts in the layer into vendor/ (FLAVOR= STAGE=)
	@$(PY) -m layer_build --flavor "$(FLAVOR)" $(if $(STAGE),--stage "$(STAGE)")

# A bad STAGE, FORMAT or FLAVOR is one error line before anything is built.
package: venv ## the runtime, then chalice package into build/ (FLAVOR= FORMAT= STAGE= API_KEY=)
	@$(PY) -m deployment.package --flavor "$(FLAVOR)" --format "$(FORMAT)" \
	  $(if $(STAGE),--stage "$(STAGE)") $(if $(filter-out 0,$(API_KEY)),--api-key)

# With the stage's batch path when it has one: checks (stage, region, credentials,
# bucket) before anything is built, the stage's runtime into vendor/, then queues, chalice
# deploy, the mappings' partial batch responses and the bucket's notification
# (deployment/deploy.py). Lite stages only.
deploy: venv ## chalice deploy STAGE= to AWS, with its batch path
	@test -n "$(STAGE)" || { echo "error: make deploy STAGE=<stage> (stages: .chalice/config.json)" >&2; exit 2; }
	@$(PY) -m deployment.deploy --stage "$(STAGE)" --check
	@$(PY) -m layer_build --flavor lite --stage "$(STAGE)"
	@$(PY) -m deployment.deploy --stage "$(STAGE)"

lock: ## re-pin requirements/dev.txt from dev.in in a scratch venv
	@python312=$$(scripts/find-python312) || exit 1; tmp=$$(mktemp -d); \
	"$$python312" -m venv $$tmp && $$tmp/bin/pip install -q -r requirements/dev.in && \
	{ echo "# Pinned development environment (Python 3.12). Generated from dev.in by 'make lock'."; \
	  $$tmp/bin/pip freeze --exclude pip; } > requirements/dev.txt; rm -rf $$tmp

# The runtime cache outside the checkout is shared: rm -rf ~/.cache/keras-lambda-serving
# frees that.
clean: ## remove what builds wrote in the checkout (build/, vendor/, .chalice/deployments)
	@du -sch build vendor .chalice/deployments 2>/dev/null | tail -1 | sed 's/total/freed/' || true
	rm -rf build vendor .chalice/deployments
