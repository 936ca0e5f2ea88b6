"""The face inside Jupyter: a drop-in ``cmp`` and the ``%%forward`` / ``%%backward`` cell magics.

``from gradcheck_kit.notebook import cmp`` keeps the lecture's ``cmp`` lines working
and checks them through the library; ``%load_ext gradcheck_kit`` adds the magics.
Like the CLI, this face calls :mod:`gradcheck_kit.check`; it never compares tensors itself.
IPython is imported only when running inside it.
"""

from .dropin import Cmp, cmp

__all__ = ["Cmp", "cmp"]
