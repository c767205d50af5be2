# Two commands from a fresh clone: `make serve` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLAVOR ?= lite
FORMAT ?= cloudformation
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt | cksum | cut -d' ' -f1)
TYPED := app.py project_paths.py chalicelib modelops localdev deployment layer_build benchmarks tests

.PHONY: serve batch test test-fast lint docs bench package deploy vendor venv lock clean

venv: $(STAMP)

$(STAMP): requirements/dev.txt
	@python312=$$(scripts/find-python312) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then \
	  echo "==> creating $(VENV) with $$python312"; rm -rf $(VENV); "$$python312" -m venv $(VENV) || exit 1; \
	fi
	@echo "==> installing pinned development dependencies (TensorFlow is large: about a minute)"
	$(PY) -m pip install --disable-pip-version-check -r requirements/dev.txt 2>&1 \
	  | { grep -v "^WARNING: Location" || true; }; exit $${PIPESTATUS[0]}
	@rm -f $(VENV)/.installed-*; touch $@

# `make serve MODEL=path/to/model.keras [LABELS= TASK= FEATURES= PREPROCESSING= OUTPUTS= NAME=
# SAMPLE=] [S3_PORT= API_PORT=]`. Each is passed on only when given on make's command line (MODEL,
# NAME and TASK are common environment names); its value travels in the environment, so
# JSON and paths need no extra quoting.
serve_option = $(if $(filter command line,$(origin $(1))),$(2) "$$$(1)")

SERVE_ARGS = $(strip $(call serve_option,MODEL,--model) $(call serve_option,LABELS,--labels) \
  $(call serve_option,TASK,--task) $(call serve_option,FEATURES,--features) \
  $(call serve_option,PREPROCESSING,--preprocessing) $(call serve_option,OUTPUTS,--outputs) \
  $(call serve_option,NAME,--name) $(call serve_option,SAMPLE,--sample) \
  $(call serve_option,S3_PORT,--s3-port) \
  $(call serve_option,API_PORT,--api-port))

serve: venv
	$(PY) -m localdev.stack $(SERVE_ARGS)

# Score a file locally as Lambda would: make batch [INPUT=file.csv|.jsonl] [WORKERS=2]
# [ROWS=100000] [PASS_THROUGH=application_id,...] [IGNORE_EXTRA=1]
batch: venv
	@$(PY) -m localdev.batch $(if $(INPUT),--input "$(INPUT)") $(if $(WORKERS),--workers $(WORKERS)) \
	  $(if $(ROWS),--rows $(ROWS)) $(if $(PASS_THROUGH),--pass-through "$(PASS_THROUGH)") \
	  $(if $(filter-out 0,$(IGNORE_EXTRA)),--ignore-extra-columns)

test: venv
	$(PY) -m pytest

# The inner loop: everything but the packaged-runtime (lambda_like) and deploy tiers.
test-fast: venv
	$(PY) -m pytest -m "not lambda_like and not deploy and not slow"

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy $(TYPED)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --quiet

# The docs site (MkDocs, strict: a broken link or anchor fails) into build/site.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --quiet

bench: venv
	$(PY) -m benchmarks

# The runtime Chalice puts in the layer: make vendor [FLAVOR=lite|tensorflow] [STAGE=S]
# (STAGE: built for the stage's lambda_architecture). The one step before a plain
# `chalice deploy --stage S` or `chalice package --stage S`.
vendor: venv
	@$(PY) -m layer_build --flavor $(FLAVOR) $(if $(STAGE),--stage $(STAGE))

# A bad STAGE, FORMAT or FLAVOR is one error line before anything is built.
package: venv
	@$(PY) -m deployment.package --flavor $(FLAVOR) --format $(FORMAT) \
	  $(if $(STAGE),--stage $(STAGE)) $(if $(API_KEY),--api-key)

# chalice deploy, with the stage's batch path when it has one: checks (stage, region,
# credentials, bucket) before anything is built, the stage's runtime into vendor/, then
# queues, chalice deploy, the mappings' partial batch responses and the bucket's
# notification (deployment/deploy.py). Lite stages only.
deploy: venv
	@test -n "$(STAGE)" || { echo "error: make deploy STAGE=<stage> (stages: .chalice/config.json)" >&2; exit 2; }
	@$(PY) -m deployment.deploy --stage $(STAGE) --check
	@$(PY) -m layer_build --flavor lite --stage $(STAGE)
	@$(PY) -m deployment.deploy --stage $(STAGE)

lock:
	@python312=$$(scripts/find-python312) || exit 1; tmp=$$(mktemp -d); \
	"$$python312" -m venv $$tmp && $$tmp/bin/pip install -q -r requirements/dev.in && \
	{ echo "# Pinned development environment (Python 3.12). Generated from dev.in by 'make lock'."; \
	  $$tmp/bin/pip freeze --exclude pip; } > requirements/dev.txt; rm -rf $$tmp

# Everything builds write in the checkout (the runtime cache outside it is shared:
# rm -rf ~/.cache/keras-lambda-serving frees that).
clean:
	@du -sch build vendor .chalice/deployments 2>/dev/null | tail -1 | sed 's/total/freed/' || true
	rm -rf build vendor .chalice/deployments
