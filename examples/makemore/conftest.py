"""Puts examples/makemore on sys.path, so its tests import ``model``, ``data`` and ``train`` as the scripts do."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
