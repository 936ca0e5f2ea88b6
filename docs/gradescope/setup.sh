#!/usr/bin/env bash
# Gradescope autograder setup: runs once when the autograder image is built.
# Upload a zip holding this file, run_autograder, and the gradcheck-kit source tree as gradcheck-kit/.
set -euo pipefail
apt-get update -q && apt-get install -y -q python3 python3-pip python3-venv
python3 -m venv /opt/gradcheck
/opt/gradcheck/bin/pip install -q --index-url https://download.pytorch.org/whl/cpu torch
/opt/gradcheck/bin/pip install -q /autograder/source/gradcheck-kit
