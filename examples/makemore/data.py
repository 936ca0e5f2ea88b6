"""names.txt loading and the makemore dataset (contexts of ``block_size`` characters -> next character).

The real names.txt lives outside the project (../shared/data/names.txt); without it a
seeded list of generated names stands in, so the example always runs.
"""

from __future__ import annotations

import os
import random
import string
from functools import lru_cache
from pathlib import Path

import torch

CHARS = "." + string.ascii_lowercase
"""The 27-character vocabulary: '.' (start/end, index 0) then a-z (1-26), as in the notebook."""
STOI = {ch: i for i, ch in enumerate(CHARS)}
SHARED_NAMES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "names.txt"

Split = tuple[torch.Tensor, torch.Tensor]


def load_words(path: str | Path) -> list[str]:
    """The words of a names.txt-style file, one per line, blank lines skipped."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def generated_words(count: int = 4000, seed: int = 1234) -> list[str]:
    """``count`` pronounceable fake names, always the same for the same seed."""
    rng = random.Random(seed)
    onsets = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z"]
    onsets += ["br", "ch", "cl", "dr", "gr", "kr", "sh", "st", "th", "tr"]
    vowels = ["a", "e", "i", "o", "u", "y", "ai", "ea", "ie", "oa", "ou"]
    codas = ["", "", "", "n", "l", "r", "s", "h", "x", "th"]
    return [
        "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 3))) + rng.choice(codas)
        for _ in range(count)
    ]


def default_names_path() -> Path | None:
    """$MAKEMORE_NAMES if set, else ../shared/data/names.txt if present, else None (generated names)."""
    env = os.environ.get("MAKEMORE_NAMES")
    if env:
        return Path(env)
    return SHARED_NAMES if SHARED_NAMES.exists() else None


def default_words() -> list[str]:
    """The words of :func:`default_names_path`, or the generated list when there is no file."""
    path = default_names_path()
    return load_words(path) if path is not None else generated_words()


def build_dataset(words: list[str], block_size: int = 3) -> Split:
    """X: (N, block_size) contexts of character indices, Y: (N,) the next character, as in the notebook."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = STOI[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def splits(path: str | Path | None = None, block_size: int = 3) -> tuple[Split, Split, Split]:
    """Train/dev/test (X, Y) from an 80/10/10 split of the words shuffled with seed 42 (the notebook's).

    ``path`` None means :func:`default_words`. Built once per path and cached: callers must not
    modify the returned tensors.
    """
    path = path if path is not None else default_names_path()
    return _splits(None if path is None else str(Path(path).resolve()), block_size)


@lru_cache(maxsize=4)
def _splits(path: str | None, block_size: int) -> tuple[Split, Split, Split]:
    words = load_words(path) if path is not None else generated_words()
    random.Random(42).shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return (
        build_dataset(words[:n1], block_size),
        build_dataset(words[n1:n2], block_size),
        build_dataset(words[n2:], block_size),
    )
