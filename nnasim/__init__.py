"""nnasim: an embedded neural-network accelerator simulator.

ONNX in; a hardware cost model (bandwidth, inferences per second) and a bit-exact
fixed-point integer engine out.
"""

__version__ = "0.1.0"
