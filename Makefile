# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test serve lint fmt typecheck bench audio clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tertulia demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(STAMP)
	$(BIN)/tertulia serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy src/tertulia

bench: $(STAMP)
	$(BIN)/python bench/schedule.py
	$(BIN)/python bench/demo.py
	$(BIN)/python bench/trial.py
	$(BIN)/python bench/safety.py
	$(BIN)/python bench/recruit_demo.py --men 200
	# The WhatsApp benchmarks need PostgreSQL and Redis (REDIS_URL, default db 0).
	$(BIN)/python bench/outbound.py --redis-url $${REDIS_URL:-redis://127.0.0.1:6379/0}
	$(BIN)/python bench/inbound.py --redis-url $${REDIS_URL:-redis://127.0.0.1:6379/0}
	$(BIN)/python bench/relay.py

# Renders the curriculum's audio steps with espeak-ng (Debian) into OGG/Opus.
audio: $(STAMP)
	command -v espeak-ng >/dev/null && command -v opusenc >/dev/null || \
		(apt-get install -y espeak-ng opus-tools)
	$(BIN)/python scripts/render_audio.py content/

clean:
	rm -rf $(VENV) var
