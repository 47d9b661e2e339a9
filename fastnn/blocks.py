"""A layer list as the kernels see it: blocks, each the Dropout of its input, one layer
that maps it (Dense, a convolution or a pooling), an optional BatchNorm (after a Dense)
and an activation — with the shape of every layer's input followed through the list
and every rule of the layers' order checked."""
import math

from fastnn.kernels import contract
from fastnn.kernels.contract import ACTIVATIONS
from fastnn.layers import LAYERS, Activation, BatchNorm, Dense, Dropout, Flatten, SpatialLayer

#: a block's kind as the kernels number it
_KIND_CODES = {"dense": contract.DENSE, "conv": contract.CONV, "pool": contract.POOL}
_NAMES = "Dense, Conv1D, Conv2D, MaxPool1D, MaxPool2D, Flatten, BatchNorm, Activation and Dropout"


class Block:
    """One block as the kernels see it: Dropout of its input (rate ``drop``), its
    ``layer``, an optional BatchNorm (``norm``), the activation (folded from the layer or
    a following Activation), the input and output ``shape``s (per sample) and, for a
    convolution or pooling, the ``geometry`` its kernels read."""

    def __init__(self, layer, drop, shape_in, shape_out):
        self.layer, self.drop, self.norm = layer, drop, None
        self.activation = getattr(layer, "activation", "identity")
        self.shape_in, self.shape_out = shape_in, shape_out
        self.geometry = None if isinstance(layer, Dense) else layer.geometry(shape_in)

    @property
    def kind(self):
        """"dense", "conv" or "pool"."""
        return getattr(self.layer, "kind", "dense")

    @property
    def n_in(self):
        return math.prod(self.shape_in)

    @property
    def n_out(self):
        return math.prod(self.shape_out)

    @property
    def fans(self):
        """(fan-in, fan-out) of the layer's weights, for their initialization."""
        if self.kind == "dense":
            return self.layer.n_in, self.layer.n_out
        window = math.prod(self.layer.kernel)
        return self.layer.c_in * window, self.layer.c_out * window

    def initial_weights(self, rng):
        """He normal for ReLU-like blocks, Glorot uniform otherwise (float64), in W's
        shape."""
        fan_in, fan_out = self.fans
        shape = self.layer.W.shape
        if self.activation in ("relu", "softplus"):
            return rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)

    def spec(self):
        """The block as the kernels' tables take it (a ``BlockSpec``)."""
        norm = self.norm
        return contract.BlockSpec(
            kind=_KIND_CODES[self.kind], n_in=self.n_in, n_out=self.n_out, geom=self.geometry,
            act=ACTIVATIONS[self.activation], norm=norm is not None,
            momentum=norm.momentum if norm else 0.0, eps=norm.eps if norm else 0.0,
            drop=self.drop, l1=getattr(self.layer, "l1", 0.0), l2=getattr(self.layer, "l2", 0.0))


def input_shape_of(layers, input_shape):
    """The per-sample input shape: ``input_shape`` checked, or the first Dense's width."""
    if input_shape is None:
        first = next((l for l in layers if not isinstance(l, (Dropout, Flatten))), None)
        if isinstance(first, Dense):
            return (first.n_in,)
        if isinstance(first, SpatialLayer):
            shape = "(channels, length)" if first.dims == 1 else "(channels, height, width)"
            raise ValueError(f"a model that starts with {first!r} needs input_shape="
                             f"{shape}, the shape of one sample")
        return None
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                        for v in shape):
        raise ValueError(f"input_shape must be a tuple of positive integers, got "
                         f"{input_shape!r}")
    return shape


def blocks_of(layers, input_shape=None):
    """The blocks of a layer list, with every rule of their order checked."""
    if isinstance(layers, tuple(LAYERS.values())) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers must be a list of {_NAMES} layers")
    shape = input_shape_of(layers, input_shape)
    blocks, drop, previous = [], 0.0, None
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        if isinstance(layer, Dense):
            if shape is not None and len(shape) > 1:
                raise ValueError(f"{where}: {layer!r} takes flat features, but its input has "
                                 f"shape {shape}; put a Flatten() before it")
            if shape is not None and shape[0] != layer.n_in:
                source = "input_shape" if not blocks else repr(blocks[-1].layer)
                raise ValueError(f"layer shapes do not chain: {source} gives {shape[0]} "
                                 f"outputs but {layer!r} takes {layer.n_in}")
            blocks.append(Block(layer, drop, (layer.n_in,), (layer.n_out,)))
            shape, drop = (layer.n_out,), 0.0
        elif isinstance(layer, SpatialLayer):
            out = layer.output_shape(shape, where)
            blocks.append(Block(layer, drop, shape, out))
            shape, drop = out, 0.0
        elif isinstance(layer, Flatten):
            if shape is not None:
                shape = (math.prod(shape),)
        elif isinstance(layer, Dropout):
            if isinstance(previous, Dropout):
                raise ValueError(f"{where}: two Dropout layers in a row; use one with the rate "
                                 "you want")
            drop = layer.rate
        elif isinstance(layer, BatchNorm):
            _check_norm(where, layer, previous, blocks)
            blocks[-1].norm = layer
        elif isinstance(layer, Activation):
            if not blocks or previous is not blocks[-1].layer and \
                    not isinstance(previous, BatchNorm) or blocks[-1].activation != "identity":
                raise ValueError(f"{where}: an Activation must follow a layer (or its "
                                 "BatchNorm) whose own activation is identity")
            blocks[-1].activation = layer.activation
        else:
            raise TypeError(f"{where} is a {type(layer).__name__}, not one of {_NAMES}")
        previous = layer
    if not any(block.kind != "pool" for block in blocks):
        raise ValueError("layers must contain at least one Dense or convolution layer")
    if isinstance(previous, Dropout):
        raise ValueError("a Dropout cannot be the last layer: it would drop the network's "
                         "outputs (place it before a Dense layer)")
    for block in blocks[:-1]:
        if block.activation == "softmax":
            raise ValueError("softmax is supported as the output activation only")
    return blocks


def _check_norm(where, layer, previous, blocks):
    if not isinstance(previous, Dense):
        if blocks and previous is blocks[-1].layer:
            raise ValueError(f"{where}: BatchNorm after {previous!r} is not supported yet; "
                             "it follows Dense layers only")
        raise ValueError(f"{where}: a BatchNorm must directly follow a Dense layer")
    block = blocks[-1]
    if block.activation != "identity":
        raise ValueError(f"{where}: BatchNorm normalizes a Dense layer's output before "
                         f"its activation, but {block.layer!r} already applies "
                         f"{block.activation!r}; write Dense(..., activation=None), "
                         f"BatchNorm(...), Activation({block.activation!r})")
    if layer.n != block.layer.n_out:
        raise ValueError(f"{where}: BatchNorm({layer.n}) follows {block.layer!r}, which "
                         f"has {block.layer.n_out} outputs; its width must match")
