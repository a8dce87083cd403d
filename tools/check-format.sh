#!/usr/bin/env bash
# Fails when a tracked C or C++ file is not formatted as .clang-format says, and names the files.
# Fix with: git ls-files '*.c' '*.h' '*.cpp' '*.hpp' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format: clang-format is not installed" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')
if ! out=$(clang-format --dry-run --Werror "${files[@]}" 2>&1); then
  echo "check-format: these files differ from .clang-format:" >&2
  grep -oE '^[^: ]+:[0-9]+:[0-9]+: error' <<<"$out" | cut -d: -f1 | sort -u | sed 's/^/  /' >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
