"""A small ONNX graph builder that calibrates synthetic weights while it builds.

The zoo's networks have no trained weights, yet their activations must look like a
trained network's: neither vanishing nor exploding through 100 layers, so that
quantization and the float executor see realistic ranges. ``NetBuilder`` therefore
runs a numpy forward pass on a synthetic calibration image alongside the graph it
emits, layer by layer, and uses what it measures:

- ``batchnorm`` sets its running mean and variance to the statistics of its actual
  input (as a BatchNorm re-estimated on data would), so each BN normalises;
- ``conv(..., unit_std=True)`` rescales a freshly drawn weight and bias by one
  factor per layer so the layer's output has standard deviation 1 (for networks
  without BN, such as LFFD; exact through ReLU, which is positively homogeneous).

Weights are He-uniform (bound ``sqrt(6 / fan_in)``) float32 from a seeded
``numpy.random.Generator``, so a build is deterministic. Built with ``seed=None``
the builder is *dry*: it emits nothing heavy and only counts parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8  # onnx >= 1.10; old enough for any recent onnxruntime to read
BN_EPSILON = 1e-5


@dataclass(frozen=True)
class Value:
    """A tensor of the graph being built: its ONNX name, channel count, calibration data.

    ``data`` is the calibration activation (N, C, H, W) or (N, F); ``None`` in a dry build.
    ``moments`` optionally carries per-feature (mean, variance) estimates for 2-D values,
    where a batch of one image cannot measure them (see ``NetBuilder.flatten``).
    """

    name: str
    channels: int
    data: np.ndarray | None
    moments: tuple[np.ndarray, np.ndarray] | None = None


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Plain NCHW convolution (no groups, no dilation) via im2col and one matrix product."""
    n, c, _, _ = x.shape
    out_ch, _, kh, kw = w.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    _, _, ho, wo, _, _ = windows.shape
    columns = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo)
    y = w.reshape(out_ch, -1) @ columns
    return y.reshape(out_ch, n, ho, wo).transpose(1, 0, 2, 3)


def synthetic_images(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """Image-like calibration input in [-1, 1]: smooth blocks of colour plus fine noise."""
    coarse = rng.uniform(-0.8, 0.8, size=(n, 3, height // 8 + 1, width // 8 + 1)).astype(np.float32)
    smooth = coarse.repeat(8, axis=2).repeat(8, axis=3)[:, :, :height, :width]
    fine = rng.normal(0.0, 0.2, size=(n, 3, height, width)).astype(np.float32)
    return np.clip(smooth + fine, -1.0, 1.0)


def _channel_axes(data: np.ndarray) -> tuple[int, ...]:
    return (0,) + tuple(range(2, data.ndim))


def _per_channel(vector: np.ndarray, ndim: int) -> np.ndarray:
    return vector.reshape((1, -1) + (1,) * (ndim - 2))


class NetBuilder:
    """Accumulates ONNX nodes and initializers; see the module docstring."""

    def __init__(self, seed: int | None) -> None:
        self.dry = seed is None
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.param_count = 0

    # ----------------------------------------------------------------- plumbing
    def _add_param(self, name: str, array: np.ndarray | None, shape: tuple[int, ...]) -> str:
        self.param_count += int(np.prod(shape))
        if not self.dry:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def _uniform(self, shape: tuple[int, ...], bound: float) -> np.ndarray | None:
        """Uniform float32 draws in [-bound, bound); ``None`` in a dry build."""
        if self.dry:
            return None
        values = self.rng.random(shape, dtype=np.float32)
        values *= np.float32(2 * bound)
        values -= np.float32(bound)
        return values

    def _node(self, op: str, inputs: list[str], output: str, **attrs) -> None:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))

    def input(self, name: str, channels: int, calibration: np.ndarray | None) -> Value:
        """The graph input; ``calibration`` is the image batch the weights are tuned on."""
        return Value(name, channels, None if self.dry else calibration)

    # ------------------------------------------------------------------- layers
    def conv(
        self,
        x: Value,
        name: str,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        pad: int = 0,
        bias: bool = True,
        unit_std: bool = False,
    ) -> Value:
        """Conv (OIHW weights ``name.weight``, optional ``name.bias``) with He-uniform weights.

        ``unit_std`` rescales weight and bias by one factor so the output's std is 1.
        """
        shape = (out_ch, x.channels, kernel, kernel)
        fan_in = x.channels * kernel * kernel
        w = self._uniform(shape, np.sqrt(6.0 / fan_in))
        b = self._uniform((out_ch,), 0.1) if bias else None
        y = None
        if x.data is not None:
            y = conv2d(x.data, w, stride, pad)
            if b is not None:
                y += _per_channel(b, y.ndim)
            if unit_std:
                scale = np.float32(1.0 / max(float(y.std()), 1e-12))
                w, y = w * scale, y * scale
                b = None if b is None else b * scale
        inputs = [x.name, self._add_param(f"{name}.weight", w, shape)]
        if bias:
            inputs.append(self._add_param(f"{name}.bias", b, (out_ch,)))
        pads = [pad] * 4
        self._node("Conv", inputs, name, kernel_shape=[kernel, kernel], strides=[stride, stride], pads=pads)
        return Value(name, out_ch, y)

    def batchnorm(self, x: Value, name: str, gamma: tuple[float, float] = (0.8, 1.2)) -> Value:
        """BatchNormalization whose running stats are the measured stats of its input.

        Gamma is drawn uniformly from the ``gamma`` range, beta from [-0.1, 0.1]; the output
        is then about N(beta, gamma^2) per channel, as after a trained BN.
        """
        c = x.channels
        scale = self._uniform((c,), 0.5 * (gamma[1] - gamma[0]))
        if scale is not None:
            scale += np.float32(0.5 * (gamma[0] + gamma[1]))
        shift = self._uniform((c,), 0.1)
        mean = var = y = None
        if x.data is not None:
            mean, var = x.moments or (
                x.data.mean(axis=_channel_axes(x.data)),
                x.data.var(axis=_channel_axes(x.data)),
            )
            nd = x.data.ndim
            inv = scale / np.sqrt(var + BN_EPSILON)
            y = ((x.data - _per_channel(mean, nd)) * _per_channel(inv, nd) + _per_channel(shift, nd)).astype(
                np.float32
            )
        inputs = [x.name] + [
            self._add_param(f"{name}.{part}", array, (c,))
            for part, array in (
                ("weight", scale),
                ("bias", shift),
                ("running_mean", mean),
                ("running_var", var),
            )
        ]
        self._node("BatchNormalization", inputs, name, epsilon=BN_EPSILON)
        return Value(name, c, y)

    def relu(self, x: Value, name: str) -> Value:
        self._node("Relu", [x.name], name)
        return Value(name, x.channels, None if x.data is None else np.maximum(x.data, 0))

    def prelu(self, x: Value, name: str) -> Value:
        """PReLU with one slope per channel (shape C,1,1), drawn from [0.05, 0.35]."""
        slope = self._uniform((x.channels, 1, 1), 0.15)
        if slope is not None:
            slope += np.float32(0.2)
        y = None if x.data is None else np.where(x.data >= 0, x.data, x.data * slope[None])
        self._node("PRelu", [x.name, self._add_param(f"{name}.weight", slope, (x.channels, 1, 1))], name)
        return Value(name, x.channels, y)

    def add(self, a: Value, b: Value, name: str) -> Value:
        self._node("Add", [a.name, b.name], name)
        return Value(name, a.channels, None if a.data is None else a.data + b.data)

    def softmax(self, x: Value, name: str) -> Value:
        """Softmax over the channel axis (axis 1)."""
        y = None
        if x.data is not None:
            e = np.exp(x.data - x.data.max(axis=1, keepdims=True))
            y = e / e.sum(axis=1, keepdims=True)
        self._node("Softmax", [x.name], name, axis=1)
        return Value(name, x.channels, y)

    def maxpool(self, x: Value, name: str, size: int) -> Value:
        """Non-overlapping max pooling (kernel = stride = ``size``)."""
        y = None
        if x.data is not None:
            n, c, h, w = x.data.shape
            cropped = x.data[:, :, : h - h % size, : w - w % size]
            y = cropped.reshape(n, c, h // size, size, w // size, size).max(axis=(3, 5))
        self._node("MaxPool", [x.name], name, kernel_shape=[size, size], strides=[size, size])
        return Value(name, x.channels, y)

    def global_average_pool(self, x: Value, name: str) -> Value:
        y = None if x.data is None else x.data.mean(axis=(2, 3), keepdims=True)
        self._node("GlobalAveragePool", [x.name], name)
        return Value(name, x.channels, y)

    def flatten(self, x: Value, name: str) -> Value:
        """Flatten NCHW to (N, C*H*W), carrying per-feature moments from per-channel stats.

        A batch of one image cannot measure a feature's variance, but each channel's
        spatial statistics estimate it (assuming stationarity across positions).
        """
        y = moments = None
        features = x.channels
        if x.data is not None:
            n, c, h, w = x.data.shape
            features = c * h * w
            y = x.data.reshape(n, features)
            axes = _channel_axes(x.data)
            moments = (np.repeat(x.data.mean(axis=axes), h * w), np.repeat(x.data.var(axis=axes), h * w))
        self._node("Flatten", [x.name], name, axis=1)
        return Value(name, features, y, moments)

    def dropout(self, x: Value, name: str) -> Value:
        """Dropout as exported for inference: the identity."""
        self._node("Dropout", [x.name], name)
        return Value(name, x.channels, x.data, x.moments)

    def gemm(self, x: Value, name: str, out_features: int, in_features: int) -> Value:
        """Fully connected layer ``y = x W^T + b`` (Gemm, transB=1), as PyTorch exports Linear.

        Per-feature output moments are propagated from the input's, treating inputs as
        independent: mean ``W mu + b``, variance ``(W*W) var``.
        """
        shape = (out_features, in_features)
        w = self._uniform(shape, np.sqrt(6.0 / in_features))
        b = self._uniform((out_features,), 0.1)
        y = moments = None
        if x.data is not None:
            y = x.data @ w.T + b
            if x.moments is not None:
                mu, var = x.moments
                moments = (w @ mu + b, (w * w) @ var)
        inputs = [
            x.name,
            self._add_param(f"{name}.weight", w, shape),
            self._add_param(f"{name}.bias", b, (out_features,)),
        ]
        self._node("Gemm", inputs, name, transB=1)
        return Value(name, out_features, y, moments)

    # -------------------------------------------------------------------- model
    def model(
        self, graph_name: str, input_name: str, input_shape: tuple[int, ...], outputs: list[Value]
    ) -> onnx.ModelProto:
        """The ONNX model, its output shapes filled in by shape inference.

        The checker and shape inference run on a weightless skeleton (weights declared as
        inputs): the same verdict in a fraction of the time for a 260 MB model.
        """
        if self.dry:
            raise RuntimeError("a dry NetBuilder only counts parameters")
        image = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))
        untyped = [helper.make_tensor_value_info(v.name, TensorProto.FLOAT, None) for v in outputs]
        output_infos = self._inferred_outputs(graph_name, image, untyped)
        model = self._wrap(helper.make_graph(self.nodes, graph_name, [image], output_infos))
        model.graph.initializer.extend(self.initializers)  # once: make_model would copy 260 MB again
        return model

    def _inferred_outputs(self, graph_name: str, image, outputs: list) -> list:
        weights = [
            helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self.initializers
        ]
        skeleton = self._wrap(helper.make_graph(self.nodes, graph_name, [image, *weights], outputs))
        inferred = onnx.shape_inference.infer_shapes(skeleton, strict_mode=True)
        onnx.checker.check_model(inferred)
        return list(inferred.graph.output)

    @staticmethod
    def _wrap(graph: onnx.GraphProto) -> onnx.ModelProto:
        opsets = [helper.make_opsetid("", OPSET)]
        return helper.make_model(
            graph, opset_imports=opsets, ir_version=IR_VERSION, producer_name="nnasim.models"
        )
