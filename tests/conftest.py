"""Shared test setup.

torch is imported once, here: pytester restores ``sys.modules`` after each in-process run,
and a second first-import of torch in one process fails.
"""

import torch  # noqa: F401 - imported for its side effect on sys.modules, see above

pytest_plugins = ["pytester"]
