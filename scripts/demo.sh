#!/usr/bin/env bash
# demo.sh -- README command 1: set up, train a car on the default track, evaluate it (3 laps).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CHICANE_HOME="${CHICANE_HOME:-$PWD/runs/demo}"
mkdir -p "$CHICANE_HOME"
build/chicane train scripts/default.lua --replace
build/chicane evaluate bayside-ppo --trials 3 --require-laps 3
