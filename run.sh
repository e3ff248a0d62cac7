#!/usr/bin/env bash
# One entry point for people and CI: installs what is missing, then runs the command.
#   ./run.sh ask "QUESTION"   set up, build the index if needed, answer with citations
#   ./run.sh test             set up everything (browser too) and run the full test suite
#   ./run.sh app | index | eval | bench | setup
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

setup() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # Re-install only when the declared dependencies change. pip caches the llama-cpp-python
  # wheel it builds (about 5 minutes on 2 cores), so later installs are quick.
  local stamp
  stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "installing dependencies into .venv (first run builds llama-cpp-python: ~5 min)" >&2
    .venv/bin/pip install -q -e '.[dev,candidates]'
    touch "$stamp"
  fi
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
  setup) setup ;;
  ask) setup; exec .venv/bin/ask "$@" ;;
  index | eval) setup; exec .venv/bin/rag "$cmd" "$@" ;;
  app) setup; exec .venv/bin/python app.py "$@" ;;
  bench) setup; exec .venv/bin/python benchmarks/run.py "$@" ;;
  test)
    setup
    setup_browser
    echo "ruff check, ruff format --check, mypy" >&2
    .venv/bin/ruff check rag tests benchmarks app.py
    .venv/bin/ruff format --check rag tests benchmarks app.py
    .venv/bin/mypy rag app.py
    # -m "" selects every tier: fakes, real models, and the browser.
    exec .venv/bin/python -m pytest -q -m "" "$@"
    ;;
  *) sed -n '2,6p' "$0"; exit 2 ;;
esac
