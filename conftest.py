"""Keeps pytest's rootdir at the repo top so `tests/` imports the checkout's nnasim.

The suite keeps its caches (zoo models, compiled kernels) in the checkout's ``.test-cache/``
rather than the user's ``~/.cache/nnasim``, unless ``NNASIM_CACHE`` says otherwise.
"""

import os
from pathlib import Path

os.environ.setdefault("NNASIM_CACHE", str(Path(__file__).resolve().parent / ".test-cache"))
