#!/usr/bin/env bash
# Makes sure this machine has what stack-emulator needs: `stack-emulator doctor --fix` installs
# the missing Debian packages as root, and otherwise prints the command and fails. In a clone of
# the repository it first installs the npm dependencies and builds, as a fresh clone has neither.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f package-lock.json ] && [ -d src ]; then # a clone, never an installed package
  if [ ! -d node_modules ]; then
    echo "prerequisites: installing npm dependencies (npm ci)" >&2
    npm ci --no-audit --no-fund
  fi
  # Missing, or older than a source file (a pull, a branch switch): it must know `doctor`.
  if [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js -print -quit)" ]; then
    echo "prerequisites: building (npm run build)" >&2
    npm run build >&2
  fi
  # test/unit/fixture-server*.test.ts run the fixture's server on this host and lint it (they skip
  # without these; the server's tests against PostgreSQL also need its server binaries: .ci/run).
  python_packages="python3-psycopg2 python3-jwt python3-cryptography python3-flake8"
  # shellcheck disable=SC2086 # one package per word
  dpkg -s $python_packages >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && apt-get install -y -qq $python_packages >&2; } || echo "prerequisites: apt-get install $python_packages, or test/unit/fixture-server*.test.ts skip" >&2
fi
# Quiet when all is there; doctor's findings when something is missing. Its stderr (what it
# installs, apt-get's output, the command to run) shows as it happens.
if ! findings=$(node dist/cli/main.js doctor --fix); then
  printf '%s\n' "$findings" >&2
  exit 1
fi
