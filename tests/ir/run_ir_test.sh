#!/usr/bin/env bash
# Runs the `# RUN:` lines of one IR golden test (tests/ir/*.ir), lit-style: %s is the test file,
# %kiln-opt, %FileCheck and %not the tools (not inverts an exit status). Every line must succeed;
# a failing one is printed with its output. Registered with ctest by tests/CMakeLists.txt.
#   usage: run_ir_test.sh FILE KILN_OPT FILECHECK NOT
set -u
file=$1
opt=$2
filecheck=$3
not=$4
mapfile -t lines < <(sed -n -E 's/^#[[:space:]]*RUN:[[:space:]]*//p' "$file")
if [ ${#lines[@]} -eq 0 ]; then
  echo "$file: no RUN: lines"
  exit 1
fi
status=0
for line in "${lines[@]}"; do
  cmd=${line//%kiln-opt/$opt}
  cmd=${cmd//%FileCheck/$filecheck}
  cmd=${cmd//%not/$not}
  cmd=${cmd//%s/$file}
  if ! out=$(bash -o pipefail -c "$cmd" 2>&1); then
    echo "FAILED: $line"
    echo "$out"
    status=1
  fi
done
exit $status
