# Every target creates and uses .venv itself: nothing depends on what was installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST   ?= 127.0.0.1
PORT   ?= 8080
CHROMIUM ?= /usr/bin/chromium
TEST_WORKERS ?= 2

.PHONY: run test bench lint format clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing switchover and its dependencies into $(VENV) (a minute or two the first time)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[test,bench]'
	rm -f $(VENV)/.installed-* && touch $@

## run: start switchover on the embedded SQLite store (creates voice_v2 on an empty store)
run: $(STAMP)
	$(BIN)/switchover serve --host $(HOST) --port $(PORT)

## test: lint, then the whole suite (PostgreSQL tests are required when SWITCHOVER_REQUIRE_POSTGRES=1,
## browser tests when SWITCHOVER_REQUIRE_BROWSER=1)
test: $(STAMP) browser
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

## bench: decisions vs GrowthBook and UnleashClient, the HTTP decide endpoint, the router, the controller
bench: $(STAMP)
	$(BIN)/python bench/run.py

## browser: Debian's Chromium for the dashboard's browser tests, installed where missing (as root)
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || \
	  echo "could not install chromium: the browser tests will skip or fail"; \
	else echo "no $(CHROMIUM): browser tests skip (install it: sudo apt-get install chromium)"; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
