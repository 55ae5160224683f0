"""Plain-numpy / Python-int references for the integer kernels: slow, obvious, independent."""
