#!/usr/bin/env bash
# README command (1): installs what is missing, builds, and runs the demo:
# several writer processes share one store, then shmctl shows what it holds.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target shmsession-demo shmctl
store=shmsession-demo
shmctl=build/tools/shmctl/shmctl
trap '"$shmctl" destroy "$store" >/dev/null 2>&1 || true' EXIT
echo
build/tools/demo/shmsession-demo --store "$store" --writers 4 --sessions 200 --seconds 2
for cmd in "info $store" "list $store --limit 5" "show $store user-0"; do
  echo
  echo "\$ shmctl $cmd"
  # shellcheck disable=SC2086
  "$shmctl" $cmd
done
