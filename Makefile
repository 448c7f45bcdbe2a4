# nutrimatch — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: run test lint typecheck unit integration e2e infra synth synth-fast bench clean reset

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,cdk]"
	touch $(STAMP)

## run: start the product on the embedded local stack with demo data; prints URLs and a demo token
run: $(STAMP)
	$(BIN)/nutrimatch local up --demo

## test: lint, type-check the core, then every test suite
test: lint typecheck
	$(BIN)/pytest -q tests/unit tests/integration tests/e2e tests/infra

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit
integration: $(STAMP)
	$(BIN)/pytest -q tests/integration
e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e
infra: $(STAMP)
	$(BIN)/pytest -q tests/infra

## synth: the CloudFormation template into cdk.out, offline; builds both layers (dependencies with local pip,
## never Docker; cached by the hash of pyproject's dependencies)
synth: $(STAMP)
	$(BIN)/python infra/app.py

## synth-fast: the template only, without bundling the dependency layer
synth-fast: $(STAMP)
	CDK_CONTEXT_JSON='{"aws:cdk:bundling-stacks":[]}' $(BIN)/python infra/app.py

## bench: every benchmark (slow; not part of the tests)
bench: $(STAMP)
	for script in bench/[a-z]*.py; do $(BIN)/python $$script || exit 1; done

reset: $(STAMP)
	$(BIN)/nutrimatch local reset --yes

clean:
	rm -rf $(VENV) cdk.out .mypy_cache .ruff_cache .pytest_cache
