"""nnasim: an embedded neural-network accelerator simulator.

ONNX in; a hardware cost model (bandwidth, inferences per second) and a bit-exact
fixed-point integer engine out.
"""

import os
from pathlib import Path

__version__ = "0.1.0"


def cache_dir() -> Path:
    """The per-user nnasim cache (zoo models, compiled kernels, lowered graphs): ``$NNASIM_CACHE``,
    else ``$XDG_CACHE_HOME/nnasim``, else ``~/.cache/nnasim``."""
    if os.environ.get("NNASIM_CACHE"):
        return Path(os.environ["NNASIM_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "nnasim"
    return Path.home() / ".cache" / "nnasim"
