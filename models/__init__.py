"""Built-in model generators (installed as ``nnasim.models``); use ``nnasim.models.zoo``."""
