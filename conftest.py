"""Keeps pytest's rootdir at the repo top so `tests/` imports the checkout's nnasim."""
