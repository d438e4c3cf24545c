#!/usr/bin/env bash
# Checks that every C++ file git tracks is formatted as .clang-format says
# (clang-format 14, Debian 12's). Prints each file that is not and the
# command that fixes them; exits non-zero then. The whole tree (277 files)
# in about 2 s. Usage: tools/scripts/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/../.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cc')
if [[ ${1:-} == --fix ]]; then
  clang-format-14 -i "${files[@]}"
  exit 0
fi
# One run over every file: its warnings name the files (file:line:col).
if ! out=$(clang-format-14 --dry-run -Werror "${files[@]}" 2>&1); then
  echo "check-format: not formatted as .clang-format says:" >&2
  grep -oE '^[^:]+:[0-9]+:[0-9]+: (error|warning)' <<<"$out" | cut -d: -f1 | sort -u | sed 's/^/  /' >&2
  echo "check-format: fix with tools/scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
