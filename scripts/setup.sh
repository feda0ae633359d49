#!/usr/bin/env bash
# setup.sh -- installs chicane's Debian packages (when missing) and builds it into ./build.
# Usage: scripts/setup.sh [extra cmake options...]   (BUILD_DIR=dir to build elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config liblua5.4-dev lua5.4 libhiredis-dev libcjson-dev
          libsqlite3-dev libopenblas-dev libssl-dev zlib1g-dev libcmocka-dev
          libcurl4-openssl-dev libxml2-dev libcairo2-dev libgif-dev libreadline-dev
          redis-server)

missing=()
# npm may come with a non-Debian nodejs build (which conflicts with Debian's npm package), so
# the packages are wanted only when the command is missing.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# s3rver, the S3-compatible server the tests talk to (package.json).
if [ ! -x node_modules/.bin/s3rver ]; then
  echo "setup: installing s3rver from npm"
  npm install --no-audit --no-fund --silent >/dev/null
fi

build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/chicane"
