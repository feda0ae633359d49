#!/usr/bin/env bash
# test.sh -- README command 2: set up, then run the whole suite, plainly and under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build scripts/setup.sh
(cd build && ctest --output-on-failure -j2)
BUILD_DIR=build-asan scripts/setup.sh -DCHICANE_SANITIZE=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j2)
