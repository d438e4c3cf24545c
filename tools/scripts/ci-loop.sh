#!/usr/bin/env bash
# Runs the fresh-clone CI N times in a row: each run clones this checkout's
# HEAD into a new folder (with a copy of ../shared beside it when there is
# one, as CI lays it), runs `bash .ci/run` there with CI=true and no
# standard input, and prints one line per run: pass or fail, exit status,
# minutes and seconds, and where its log is. Exits non-zero if any run
# failed. Usage: tools/scripts/ci-loop.sh [N] [WORKDIR]
#   N        runs (default 3)
#   WORKDIR  where the clones and logs go (default /tmp/shmsession-ci-loop)
# The clones are removed after a passing run and kept after a failing one.
set -uo pipefail
runs=${1:-3}
work=${2:-/tmp/shmsession-ci-loop}
repo=$(cd "$(dirname "$0")/../.." && pwd)
head=$(git -C "$repo" rev-parse HEAD)
mkdir -p "$work"
failed=0
echo "ci-loop: $runs fresh-clone run(s) of ${head:0:12} in $work"
for ((i = 1; i <= runs; ++i)); do
  dir="$work/run-$i"
  rm -rf "$dir"
  mkdir -p "$dir"
  git clone -q --no-local "$repo" "$dir/main"
  git -C "$dir/main" checkout -q "$head"
  [[ -d $repo/../shared ]] && cp -r "$repo/../shared" "$dir/shared"
  start=$(date +%s)
  (cd "$dir/main" && CI=true bash .ci/run </dev/null >"$dir/ci.log" 2>&1)
  code=$?
  secs=$(($(date +%s) - start))
  if ((code == 0)); then
    verdict=pass
    cp "$dir/ci.log" "$work/run-$i.log"
    rm -rf "$dir"
    log="$work/run-$i.log"
  else
    verdict=FAIL
    failed=$((failed + 1))
    log="$dir/ci.log"
  fi
  printf 'run %d: %s (exit %d) in %dm%02ds, log %s\n' "$i" "$verdict" "$code" $((secs / 60)) $((secs % 60)) "$log"
done
echo "ci-loop: $((runs - failed)) passed, $failed failed"
((failed == 0))
