"""Sweep specs installed with nnasim (``nnasim sweep example``)."""
