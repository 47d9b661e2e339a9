"""A layer list as the kernels see it: dense blocks, each Dropout of its input, a Dense
layer, an optional BatchNorm and an activation, with every rule of the layers' order
checked."""
from fastnn.layers import Activation, BatchNorm, Dense, Dropout


class Block:
    """One dense block as the kernels see it: Dropout of its input (rate ``drop``), the
    Dense layer, an optional BatchNorm, the activation (folded from the Dense or a
    following Activation layer)."""

    def __init__(self, dense, drop):
        self.dense, self.drop, self.norm = dense, drop, None
        self.activation = dense.activation


def blocks_of(layers):
    """The blocks of a layer list, with every rule of their order checked."""
    if isinstance(layers, (Dense, Activation, BatchNorm, Dropout)) or \
            not hasattr(layers, "__iter__"):
        raise TypeError("layers must be a list of Dense, BatchNorm, Activation and Dropout "
                        "layers")
    blocks, drop, previous = [], 0.0, None
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        if isinstance(layer, Dense):
            blocks.append(Block(layer, drop))
            drop = 0.0
        elif isinstance(layer, Dropout):
            if isinstance(previous, Dropout):
                raise ValueError(f"{where}: two Dropout layers in a row; use one with the rate "
                                 "you want")
            drop = layer.rate
        elif isinstance(layer, BatchNorm):
            if not isinstance(previous, Dense):
                raise ValueError(f"{where}: a BatchNorm must directly follow a Dense layer")
            block = blocks[-1]
            if block.activation != "identity":
                raise ValueError(f"{where}: BatchNorm normalizes a Dense layer's output before "
                                 f"its activation, but {block.dense!r} already applies "
                                 f"{block.activation!r}; write Dense(..., activation=None), "
                                 f"BatchNorm(...), Activation({block.activation!r})")
            if layer.n != block.dense.n_out:
                raise ValueError(f"{where}: BatchNorm({layer.n}) follows {block.dense!r}, which "
                                 f"has {block.dense.n_out} outputs; its width must match")
            block.norm = layer
        elif isinstance(layer, Activation):
            if not isinstance(previous, (Dense, BatchNorm)) or blocks[-1].activation != "identity":
                raise ValueError(f"{where}: an Activation must follow a Dense (or its "
                                 "BatchNorm) whose own activation is identity")
            blocks[-1].activation = layer.activation
        else:
            raise TypeError(f"{where} is a {type(layer).__name__}, not a Dense, BatchNorm, "
                            "Activation or Dropout layer")
        previous = layer
    if not blocks:
        raise ValueError("layers must contain at least one Dense layer")
    if isinstance(previous, Dropout):
        raise ValueError("a Dropout cannot be the last layer: it would drop the network's "
                         "outputs (place it before a Dense layer)")
    for a, b in zip(blocks, blocks[1:]):
        if b.dense.n_in != a.dense.n_out:
            raise ValueError(f"layer shapes do not chain: {a.dense!r} gives {a.dense.n_out} "
                             f"outputs but {b.dense!r} takes {b.dense.n_in}")
    for block in blocks[:-1]:
        if block.activation == "softmax":
            raise ValueError("softmax is supported as the output activation only")
    return blocks
