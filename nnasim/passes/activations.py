"""Fuse Relu/Clip/PRelu/LeakyRelu into the op that produces their input, as NPUs do.

The activation then runs in the producer's output stage: no extra pass over the data
in the cost model, no extra requantization in the integer engine.
"""

from __future__ import annotations

from nnasim.ir import ACTIVATION_OPS, Graph, Op
from nnasim.ir.execute import activation_of
from nnasim.passes.rewrite import prune, single_consumer

FUSING_PRODUCERS = (Op.CONV, Op.CONV_TRANSPOSE, Op.GEMM, Op.MATMUL, Op.ADD, Op.SUB, Op.MUL, Op.BATCHNORM)


def fuse_activations(graph: Graph) -> Graph:
    nodes = list(graph.nodes)
    consumers = graph.consumers()
    producers = graph.producers()
    for act_node in graph.nodes:
        if act_node.op not in ACTIVATION_OPS:
            continue
        producer = producers.get(act_node.inputs[0])
        if (
            producer is None
            or producer.op not in FUSING_PRODUCERS
            or producer.act is not None
            or not single_consumer(graph, producer.outputs[0], consumers)
            or not _per_channel_fits(graph, act_node, producer)
        ):
            continue
        fused = producer.with_(act=activation_of(act_node), outputs=act_node.outputs)
        nodes = [fused if n is producer else n for n in nodes if n is not act_node]
        producers[act_node.outputs[0]] = fused
    return prune(graph.with_(nodes=tuple(nodes)))


def _per_channel_fits(graph: Graph, act_node, producer) -> bool:
    """A PRelu slope is per channel of axis 1: fuse only where the producer's output has that axis."""
    return act_node.op != Op.PRELU or len(graph.shape(producer.outputs[0])) >= 2
