#!/usr/bin/env bash
# clang-tidy (14, Debian 12's) with the checks .clang-tidy lists, every
# warning an error. The whole tree takes ~9 minutes on two cores, too long
# for CI: CI checks the C++ files changed since the commit named in
# .ci/tidy-base, the last one whose whole tree passed, and a developer who
# runs --all clean moves that mark forward (commit the file).
# Usage: tools/scripts/tidy.sh [--all]
# A changed header is checked through the .cpp of the same name beside it
# (HeaderFilterRegex covers the project's headers).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${SHMSESSION_TIDY_BUILD:-build-tidy}
CXX=clang++ cmake -S . -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DSHMSESSION_UNITY_BUILD=OFF \
  -DSHMSESSION_BUILD_FUZZ=OFF -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON >/dev/null
mapfile -t all < <(python3 -c '
import json, os, sys
root = os.getcwd() + "/"
files = {e["file"] for e in json.load(open(sys.argv[1])) if e["file"].startswith(root)}
print("\n".join(sorted(f[len(root):] for f in files)))' "$build/compile_commands.json")
if [[ ${1:-} == --all ]]; then
  files=("${all[@]}")
else
  base=$(cat .ci/tidy-base)
  if ! git cat-file -e "$base^{commit}" 2>/dev/null; then
    echo "tidy: .ci/tidy-base names $base, which this clone lacks: run tools/scripts/tidy.sh --all" >&2
    exit 1
  fi
  mapfile -t changed < <(git diff --name-only "$base" -- '*.cpp' '*.hpp')
  files=()
  for f in "${all[@]}"; do
    for c in "${changed[@]}"; do
      if [[ $f == "$c" || $f == "${c%.hpp}.cpp" ]]; then
        files+=("$f")
        break
      fi
    done
  done
fi
if ((${#files[@]} == 0)); then
  echo "tidy: no C++ file changed since $(cat .ci/tidy-base)"
  exit 0
fi
echo "tidy: ${#files[@]} files"
printf '%s\n' "${files[@]}" | xargs -P2 -n1 clang-tidy-14 -p "$build" --quiet 2>/dev/null
echo "tidy: ${#files[@]} files clean"
