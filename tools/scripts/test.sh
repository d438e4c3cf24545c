#!/usr/bin/env bash
# README command (2): installs what is missing, builds everything, and runs
# every test under CTest. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMSESSION_BUILD_TESTS=ON >/dev/null
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2
