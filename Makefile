# Set-up and checks. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# torch for the test suite's API tests (nvenc itself does not need it). pip picks the
# wheel: from PyPI on Linux that is the multi-GB CUDA build; for the CPU build from any
# machine, `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
STAMP  := $(VENV)/.installed
# `make demo` gets its own venv with nvenc's runtime dependencies only (no torch, no test or
# docs tools): what a user's `pip install .` gets.
DEMO_VENV ?= .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

.PHONY: all install bytecode demo test lint man docs gpu-check bench bench-quick bench-throughput bench-many bench-clips bench-memory clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(PIP) install --quiet -e ".[test,docs]"
	touch $(STAMP)

install: $(STAMP) bytecode

# Byte-compile the package: an editable install has no .pyc files, and where
# PYTHONDONTWRITEBYTECODE is set every run would recompile it (~0.1 s of start-up).
bytecode: $(STAMP)
	@$(PY) -m compileall -q nvenc_cli

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/pip install --quiet .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/nvenc testsrc demo_frames.npy --size 1280x720 --frames 120
	$(DEMO_VENV)/bin/nvenc encode demo_frames.npy -o demo.mp4 -y
	@echo "demo.mp4 is ready"

# The suite runs every example of README.md and docs/ (tests/test_docs.py), then the
# documentation is built strictly: a broken link or reference fails.
test: install
	$(PY) -m pytest -q
	$(MAKE) docs

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

lint: $(STAMP)
	$(VENV)/bin/ruff check nvenc_cli tests bench docs/hooks.py
	$(VENV)/bin/ruff format --check nvenc_cli tests bench docs/hooks.py

# The prepared GPU check (bench/gpu_check.py): CUDA tests, then float32 and uint8 CUDA
# tensors at 1080p through cuda-convert+cpu-encode against .cpu() + the CPU path and
# torchcodec. Installs nothing: run it where `pip install -e ".[gpu,test]"` was done.
# Without a GPU it runs on torch's CPU device and says so.
gpu-check:
	$(PYTHON) bench/gpu_check.py $(GPU_CHECK_ARGS)

man: $(STAMP)
	$(PY) -m nvenc_cli.manpage --output man/nvenc.1
	$(PY) -m pytest -q tests/test_man.py

# torchcodec 0.13.0 is the peer release that matches torch 2.13 on the CPU; the script
# skips it (with a note) where it cannot be installed.  The bench extra brings
# imageio-ffmpeg, whose static ffmpeg (the newest release) runs beside the system's.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PIP) install --quiet -e ".[bench]"
	-@$(PIP) install --quiet "torchcodec==0.13.0" 2>/dev/null
	touch $(BENCH_STAMP)

# Cases (a)-(d) against both ffmpegs and the encoder-only floors, then many short clips.
bench: install $(BENCH_STAMP)
	$(PY) bench/bench.py --cases
	$(PY) bench/bench.py --many
	$(PY) bench/clips.py
	$(PY) bench/cloud.py

# The same cases, shorter clips, 2 rounds (about 3 minutes on 2 cores).
bench-quick: install $(BENCH_STAMP)
	$(PY) bench/bench.py --cases --quick

# The original table: 1080p and 720p, ultrafast and medium, every peer incl. ffmpeg-static.
bench-throughput: install $(BENCH_STAMP)
	$(PY) bench/bench.py

# Many short clips in one run (-j 2) against xargs -P2 ffmpeg and shell loops.
bench-many: install $(BENCH_STAMP)
	$(PY) bench/bench.py --many

# Many small clips in one Python process: VideoEncoder (waiting, and wait=False) vs torchcodec.
bench-clips: install $(BENCH_STAMP)
	$(PY) bench/clips.py

bench-memory: install $(BENCH_STAMP)
	$(PY) bench/bench.py --memory

clean:
	rm -rf $(VENV) $(DEMO_VENV) demo.mp4 demo_frames.npy .pytest_cache site
