#!/usr/bin/env bash
# clang-tidy (14, Debian 12's) with the checks .clang-tidy lists, every
# warning an error. The whole tree takes ~7 minutes on two cores, too long
# for CI: CI checks only the C++ files whose contents differ from the ones
# the last whole pass found clean. .ci/tidy-base lists those (git blob id
# and path of every C++ file then), so it needs no history (a shallow clone
# works too); `--all` checks everything and, when clean, writes the list
# anew (commit it).
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
# "blob-id path" of every tracked C++ file as it is in the work tree.
fingerprints() {
  local list
  list=$(git ls-files '*.cpp' '*.hpp' '*.h' '*.cc')
  paste -d' ' <(git hash-object --stdin-paths <<<"$list") <(echo "$list")
}
if [[ ${1:-} == --all ]]; then
  files=("${all[@]}")
else
  if [[ ! -s .ci/tidy-base ]]; then
    echo "tidy: .ci/tidy-base is missing: run tools/scripts/tidy.sh --all" >&2
    exit 1
  fi
  mapfile -t changed < <(fingerprints | grep -vxF -f .ci/tidy-base | cut -d' ' -f2-)
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
  echo "tidy: no C++ file changed since the last whole pass (.ci/tidy-base)"
  exit 0
fi
echo "tidy: ${#files[@]} files"
printf '%s\n' "${files[@]}" | xargs -P2 -n1 clang-tidy-14 -p "$build" --quiet 2>/dev/null
echo "tidy: ${#files[@]} files clean"
if [[ ${1:-} == --all ]]; then
  fingerprints >.ci/tidy-base
  echo "tidy: .ci/tidy-base written: commit it"
fi
