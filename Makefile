# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install demo test lint format bench a11y chaos failover soak react-shop-deps js-client-deps js-client js-types clean

$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> installing into $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# Everything in the foreground (web, worker, clock, Stripe emulator, mail catcher, Redis):
# prints the checkout page's URL and what a shop's frontend needs; Ctrl-C stops it all.
# `make demo ARGS=--free-ports` (or DEMO_ARGS=…) passes options on (python -m devstack.demo -h).
demo: install
	$(PY) -m devstack.demo $(strip $(ARGS) $(DEMO_ARGS))

# Lighthouse accessibility score of the checkout page (budget 0.95), Lighthouse from
# node_modules (package-lock.json), Chromium from CHROME_PATH.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

a11y: install node_modules/.installed
	CHROME_PATH=$${CHROME_PATH:-/usr/bin/chromium} $(PY) -m devstack.a11y

# The React storefront example's dependencies, from its lock file. `make test` builds and
# drives it when Node is installed (tests/web/test_react_shop_browser.py runs the same
# `npm ci` when this stamp is older than the package files); .ci/run installs it first.
REACT_SHOP := examples/react-shop
$(REACT_SHOP)/node_modules/.installed: $(REACT_SHOP)/package.json $(REACT_SHOP)/package-lock.json
	cd $(REACT_SHOP) && npm ci --no-audit --no-fund
	@touch $@

react-shop-deps: $(REACT_SHOP)/node_modules/.installed

# The browser client (clients/js, the example's `@checkout-service/client`): its
# dependencies from its lock file, its build (dist/ and a tarball a shop can
# `npm install`), and its types regenerated from this app's OpenAPI document (run it after
# an API change; tests/clients/test_js.py fails while they differ).
JS_CLIENT := clients/js
$(JS_CLIENT)/node_modules/.installed: $(JS_CLIENT)/package.json $(JS_CLIENT)/package-lock.json
	cd $(JS_CLIENT) && npm ci --no-audit --no-fund
	@touch $@

js-client-deps: $(JS_CLIENT)/node_modules/.installed

js-client: js-client-deps
	cd $(JS_CLIENT) && npm run build && npm pack --silent

js-types: install js-client-deps
	$(PY) -m app.api $(JS_CLIENT)/openapi.json
	cd $(JS_CLIENT) && npm run types -- openapi.json -o src/schema.ts

lint: install
	@echo "==> ruff"
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --no-cache --check .
	@echo "==> mypy"
	$(VENV)/bin/mypy
	@echo "==> import contracts"
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Runs the whole suite. REDIS_URL / DATABASE_URL, when set, are passed through so the
# concurrency, Lua and locking suites also run against the real servers. The failover
# suite (private Sentinel servers, a minute or two) is `make failover`, which .ci/run
# runs after this.
test: lint
	@echo "==> pytest"
	$(PY) -m pytest -m "not failover" $(PYTEST_ARGS)

# Every figure of docs/performance.md (wrk for HTTP, py-spy for the profile), on the real
# Redis (and PostgreSQL when DATABASE_URL names one); about 5 minutes. The table goes to
# stdout and var/perf/; progress to stderr.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	REDIS_URL="$${REDIS_URL:-redis://127.0.0.1:6379/0}" $(PY) -m devstack.perf $(BENCH_ARGS)

# The chaos suite at the issue's sizes (docs/reliability.md): kill -9 of web, worker and
# clock, Redis and PostgreSQL restarts, a Redis flush + rebuild, the emulator's chaos and
# forged webhooks, on private servers; about 10 minutes. `make test` runs a short version.
chaos: install
	CHAOS_SCALE=long $(PY) -m pytest -m chaos tests/chaos $(PYTEST_ARGS)

# The Redis primary SIGKILLed mid-sale behind three sentinels (docs/reliability.md, "Redis
# failover"): a primary, two replicas, three sentinels and the app, on private servers;
# a minute or two; .ci/run runs it after `make test`.
failover: install
	$(PY) -m pytest -m failover tests/failover $(PYTEST_ARGS)

# The soak (docs/reliability.md, "Soak"): 30 minutes at 20 paid orders a second, every
# webhook delivered twice, 1 % of Stripe calls failing; memory, Redis, PostgreSQL
# connections and p99s sampled each minute into var/soak/ (CSV, PNG, markdown table), then
# a verdict on what grew. Not in `make test`. SOAK_ARGS="--minutes 3 --rate 2" for a try;
# DATABASE_URL (PostgreSQL) is used when set, else SQLite.
soak: install
	$(PY) -m devstack.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var/*.db .pytest_cache .mypy_cache .ruff_cache $(REACT_SHOP)/dist $(JS_CLIENT)/dist
