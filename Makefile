# escrow-jobs: `make dev` runs the local stack, `make test` runs the tests.
# Both set everything up on a fresh machine first (venv, packages, a redis-server binary).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install redis-bin browser-bin test test-fast lint format bench dev clean lock

LOCK   := layers/jobs_core/requirements.txt

# The tests run on the layer's locked versions (-c): what they pass with is what ships.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -c $(LOCK)
	@touch $(STAMP)

install: $(STAMP)

# The tests start their own redis-server on a free port (never touching a Redis they did not
# start); this makes sure the binary exists, installing Debian's package when it is missing.
redis-bin:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing it"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version

# The console's browser test drives Debian's chromium through Playwright (installed by pip
# with the dev extras); `playwright install` cannot download browsers here, so install the
# distribution's package when it is missing.
browser-bin:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium not found: installing it"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

test: install redis-bin browser-bin
	$(PY) -m pytest -q -n 2 --dist loadgroup

test-fast: install
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install redis-bin
	$(PY) -m bench

dev: install redis-bin
	$(PY) -m local_stack

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam

# Pin the layer's runtime dependencies (requirements.in) at the installed, tested versions.
lock: install
	$(PY) layers/lock_layer.py
