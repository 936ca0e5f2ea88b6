#!/usr/bin/env bash
# Gradescope autograder setup: runs once, as root, when the autograder image is built (the zip from build.sh is
# unpacked into $AUTOGRADER_ROOT/source). AUTOGRADER_ROOT (default /autograder) and GRADCHECK_VENV (default
# /opt/gradcheck; an existing one with gradcheck-kit installed is kept) make the recipe testable off Gradescope.
set -euo pipefail
ROOT=${AUTOGRADER_ROOT:-/autograder}
VENV=${GRADCHECK_VENV:-/opt/gradcheck}
if [ ! -x "$VENV/bin/gradcheck-kit" ]; then
  apt-get update -q && apt-get install -y -q python3 python3-pip python3-venv
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch
  "$VENV/bin/pip" install -q "$ROOT/source/gradcheck-kit"
fi
# The assignment (and the data) is read by the grader, which runs as root; the student's code runs as uid 65534
# and must read none of it, nor the shipped source: both become root-only.
install -d -m 700 "$ROOT/assignment"
cp -r "$ROOT/source/assignment/." "$ROOT/assignment/"
chmod -R go-rwx "$ROOT/assignment" "$ROOT/source"
