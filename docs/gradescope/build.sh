#!/usr/bin/env bash
# Build the Gradescope autograder zip from this checkout: build.sh OUT.zip [NAMES.txt]
# It ships only what grading needs: the package (to install), the assignment's three files and, if given, the
# names.txt the students used; no reference solution, no tests, no sample submissions.
set -euo pipefail
ZIP=$(realpath -m "$1")
NAMES=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/gradcheck-kit" "$STAGE/assignment"
cp "$HERE/setup.sh" "$HERE/run_autograder" "$STAGE/"
(cd "$REPO" && tar -c --exclude=__pycache__ pyproject.toml README.md gradcheck_kit plugins) | tar -x -C "$STAGE/gradcheck-kit"
cp "$REPO/examples/makemore/assignment.py" "$REPO/examples/makemore/model.py" "$REPO/examples/makemore/data.py" \
  "$STAGE/assignment/"
if [ -n "$NAMES" ]; then cp "$NAMES" "$STAGE/assignment/names.txt"; fi
rm -f "$ZIP"
(cd "$STAGE" && zip -q -r "$ZIP" setup.sh run_autograder gradcheck-kit assignment)
echo "$ZIP"
