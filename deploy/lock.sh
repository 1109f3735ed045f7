#!/usr/bin/env bash
# Rewrites deploy/constraints.txt with what `pip install .` resolves today, in a fresh venv.
# Run it after changing pyproject.toml's dependencies; review and commit the diff.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install --quiet .
{
  echo "# The image's dependency lock: the exact versions \`pip install .\` resolved, used by the"
  echo "# Dockerfile as pip constraints so that an image build is repeatable. Written by"
  echo "# deploy/lock.sh; tests/test_deploy.py checks that every pin satisfies pyproject.toml."
  "$scratch/venv/bin/pip" freeze --exclude authswitch
} > deploy/constraints.txt
