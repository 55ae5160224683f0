"""Graph -> Graph passes, run as one named pipeline with a graph check after each stage."""

from __future__ import annotations

from collections.abc import Callable

from nnasim.errors import GraphError
from nnasim.ir import Graph, check_graph
from nnasim.passes.activations import fuse_activations
from nnasim.passes.batchnorm import fold_batchnorm
from nnasim.passes.cleanup import remove_identity
from nnasim.passes.constants import fold_constants
from nnasim.passes.layernorm import fuse_layer_norm

Pass = Callable[[Graph], Graph]

PIPELINE: tuple[tuple[str, Pass], ...] = (
    ("remove_identity", remove_identity),
    ("fold_constants", fold_constants),
    ("fold_batchnorm", fold_batchnorm),
    ("fuse_layer_norm", fuse_layer_norm),
    ("fuse_activations", fuse_activations),
)


def lower(graph: Graph, pipeline: tuple[tuple[str, Pass], ...] = PIPELINE, trace=None) -> Graph:
    """Run ``pipeline`` over ``graph``; ``trace(stage, graph)`` sees the graph after each stage."""
    check_graph(graph)
    for stage, run_pass in pipeline:
        graph = run_pass(graph)
        try:
            check_graph(graph)
        except GraphError as error:
            raise GraphError(f"graph check failed after pass {stage!r}: {error}") from error
        if trace is not None:
            trace(stage, graph)
    return graph
