# Two commands matter: `make run` (the app on SQLite, demo payments) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)
FLASK  := $(BIN)/flask --app wsgi
HTMX_VERSION := 2.0.11
PORT   ?= 5000
export PORT

.PHONY: run test lint install assets migrate bench clean up pdf-check

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# htmx from the npm registry, never committed; pages work without it.
static/vendor/htmx.min.js:
	@mkdir -p static/vendor
	@if command -v npm >/dev/null 2>&1; then \
		tmp=$$(mktemp -d) && npm install --silent --prefix "$$tmp" htmx.org@$(HTMX_VERSION) >/dev/null 2>&1 \
		&& cp "$$tmp/node_modules/htmx.org/dist/htmx.min.js" $@ && rm -rf "$$tmp" \
		|| echo "htmx not installed (npm failed): pages still work as plain HTML"; \
	else echo "npm not found: htmx not installed; pages still work as plain HTML"; fi

assets: static/vendor/htmx.min.js

migrate: $(STAMP)
	$(FLASK) db upgrade

# PDF invoices are rendered by WeasyPrint, which needs the system's Pango library: without
# it the app runs, but PDF downloads answer 503 and mails go without their PDF.
pdf-check: $(STAMP)
	@$(BIN)/python -c "import weasyprint" >/dev/null 2>&1 \
		|| echo "PDF invoices are off: the Pango library is missing. Install it (Debian/Ubuntu:" \
		"sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0; macOS: brew install pango) and restart."

run: $(STAMP) assets migrate pdf-check
	$(FLASK) demo-setup
	$(FLASK) serve --host 127.0.0.1

test: $(STAMP) assets
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The guard rails CI runs before the tests: lint and format, types, import contracts.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench.billing_run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts static/vendor

# Production-like: gunicorn, one worker and the scheduler against real Redis and
# PostgreSQL (set REDIS_URL and DATABASE_URL). Ctrl-C stops all three.
up: $(STAMP) assets migrate
	@test -n "$$REDIS_URL" || (echo "set REDIS_URL (and DATABASE_URL) first" && exit 2)
	trap 'kill 0' INT TERM EXIT; \
	$(BIN)/gunicorn --workers 4 --bind 127.0.0.1:8000 wsgi:app & \
	$(BIN)/python worker.py & \
	$(BIN)/python worker.py --scheduler & \
	wait
