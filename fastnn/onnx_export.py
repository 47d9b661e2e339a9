"""``fastnn.to_onnx``: a trained model (or fitted fastnn estimator) as an ONNX graph, to
run without Python or fastnn (onnxruntime, C++, the browser).

Each block becomes Gemm (Y = X·Wᵀ + b; the batch is the first dimension, as ONNX
runtimes expect) and its activation (Relu, Sigmoid, Tanh, Softmax over the features;
softplus as max(z, 0) + log(1 + e^-|z|)); a BatchNorm is folded into the Dense before
it with its running statistics, W' = s ⊙ W, b' = β − s ⊙ μ̄ with s = γ/√(σ̄² + ε) (the
Dense's own bias is unused under BatchNorm, as in training); Dropout is the identity
at inference and is left out. The input ``X`` is (batch, n_features) with a dynamic
batch dimension, of the model's dtype.

Outputs: a ``Sequential`` gives ``Y``, what ``model.forward`` gives. A fitted
``fastnn.MLPClassifier`` gives ``label`` (``predict``: class labels, or the 0/1
indicator matrix for multilabel targets) and ``probabilities`` (``predict_proba``); a
``fastnn.MLPRegressor`` gives ``prediction`` (``predict``). A fitted scikit-learn
``Pipeline`` of scalers (StandardScaler, MinMaxScaler, RobustScaler, "passthrough")
ending in a fastnn estimator gives the estimator's outputs, its scalers as Sub/Div and
Mul/Add (Clip) nodes in the model's dtype before the network. Needs the ``onnx`` package
(``pip install -e '.[onnx]'`` in fastnn's checkout).
"""
import os

import numpy as np

from fastnn.version import __version__

#: opset 17: Softmax over one axis (13+), every operator used here
OPSET = 17
#: the oldest IR version opset 17 allows, for older runtimes
IR_VERSION = 8
_ACTIVATION_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp"}


def to_onnx(model_or_estimator, path=None):
    """The ONNX ``ModelProto`` of a ``fastnn.Sequential`` or a fitted fastnn estimator
    (see the module docstring), checked by ``onnx.checker``; also written to ``path``
    when given."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("fastnn.to_onnx needs the onnx package: pip install onnx, or "
                          f"pip install -e '.[onnx]' in fastnn's checkout ({exc})") from exc
    from fastnn.model import Sequential

    graph = _Graph(onnx)
    if isinstance(model_or_estimator, Sequential):
        model = model_or_estimator
        graph.network(model, "X", "Y")
        outputs = [("Y", model.dtype, ["batch", model.n_outputs])]
    else:
        model, outputs = _estimator(graph, *_pipeline_steps(model_or_estimator))
    proto = graph.model(model, outputs)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        path = os.fspath(path)
        from fastnn.atomic_file import atomic_write

        with atomic_write(path, what="the ONNX model") as f:
            f.write(proto.SerializeToString())
    return proto


#: the scikit-learn scalers a Pipeline may hold before a fastnn estimator
_SCALERS = ("StandardScaler", "MinMaxScaler", "RobustScaler")


def _pipeline_steps(obj):
    """(scalers, estimator) of a fitted Pipeline of scalers and a fastnn estimator, or
    ((), obj) for anything that is not a Pipeline."""
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:
        return (), obj
    if not isinstance(obj, Pipeline):
        return (), obj
    scalers = []
    for name, step in obj.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if type(step).__name__ not in _SCALERS or \
                not type(step).__module__.startswith("sklearn.preprocessing"):
            raise TypeError(f"to_onnx exports a Pipeline of {', '.join(_SCALERS)} steps "
                            f"ending in a fastnn estimator; step {name!r} is a "
                            f"{type(step).__name__}. Export the estimator alone with "
                            "fastnn.to_onnx(pipe[-1]) and that step with another tool")
        scalers.append(step)
    return scalers, obj.steps[-1][1]


def _estimator(graph, scalers, estimator):
    """The graph of a fitted fastnn estimator (after the Pipeline's ``scalers``): its
    network, then predict's (and predict_proba's) post-processing."""
    try:
        from fastnn.sklearn import MLPClassifier, MLPRegressor
    except ImportError:
        MLPClassifier = MLPRegressor = ()
    if not isinstance(estimator, (MLPClassifier, MLPRegressor)):
        what = "the Pipeline's last step" if scalers else "the argument"
        raise TypeError("to_onnx exports a fastnn.Sequential, a fitted fastnn.MLPClassifier "
                        "or MLPRegressor, or a Pipeline of scalers ending in one; "
                        f"{what} is a {type(estimator).__name__}")
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    for scaler in scalers:
        check_is_fitted(scaler)
    model = estimator._model
    n = model.n_outputs
    graph.network(model, graph.scaled(scalers, "X", model.dtype), "outputs")
    if isinstance(estimator, MLPRegressor):
        if n == 1:
            graph.node("Squeeze", ["outputs", graph.constant("axis1", np.array([1]))],
                       ["prediction"])
            return model, [("prediction", model.dtype, ["batch"])]
        graph.node("Identity", ["outputs"], ["prediction"])
        return model, [("prediction", model.dtype, ["batch", n])]
    classes = np.asarray(estimator.classes_)
    binarizer = estimator._label_binarizer
    if binarizer.y_type_ == "multilabel-indicator":
        half = graph.constant("half", np.array(0.5, dtype=model.dtype))
        graph.node("Greater", ["outputs", half], ["chosen"])
        graph.node("Cast", ["chosen"], ["label"], to=graph.onnx.TensorProto.INT64)
        graph.node("Identity", ["outputs"], ["probabilities"])
        return model, [("label", np.int64, ["batch", n]),
                       ("probabilities", model.dtype, ["batch", n])]
    if n == 1:   # binary: p of the second class; probabilities [1 - p, p]
        one = graph.constant("one", np.array(1.0, dtype=model.dtype))
        graph.node("Sub", [one, "outputs"], ["first"])
        graph.node("Concat", ["first", "outputs"], ["probabilities"], axis=1)
    else:
        graph.node("Identity", ["outputs"], ["probabilities"])
    graph.node("ArgMax", ["probabilities"], ["index"], axis=1, keepdims=0)
    labels = classes if classes.dtype.kind in "biuf" else classes.astype(str)
    if len(labels) == 1:   # one class seen in training: always that one
        labels = np.repeat(labels, 2)
    table = graph.constant("classes", labels if labels.dtype.kind != "U"
                           else labels.astype(object))
    graph.node("Gather", [table, "index"], ["label"], axis=0)
    label_type = object if labels.dtype.kind == "U" else labels.dtype
    return model, [("label", label_type, ["batch"]),
                   ("probabilities", model.dtype, ["batch", max(2, n)])]


class _Graph:
    """Nodes and initializers of one graph under construction."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers, self._count = [], [], 0

    def constant(self, name, array):
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, outputs, **attributes):
        self._count += 1
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outputs,
                                                     name=f"{op}_{self._count}", **attributes))

    def network(self, model, source, target):
        """Gemm + activation per block from ``source`` to ``target``."""
        spatial = next((b.layer for b in model.blocks if b.kind != "dense"), None)
        if spatial is not None:
            raise ValueError(f"to_onnx: {spatial!r} layers cannot be exported yet; ONNX export "
                             "covers Dense, BatchNorm, Activation and Dropout layers")
        current = source
        for l, block in enumerate(model.blocks):
            W, b = _folded(block, model.dtype)
            z = f"z{l}" if block.activation != "identity" or l < len(model.blocks) - 1 \
                else target
            self.node("Gemm", [current, self.constant(f"W{l}", W), self.constant(f"b{l}", b)],
                      [z], transB=1)
            current = z
            if block.activation == "identity":
                continue
            a = target if l == len(model.blocks) - 1 else f"a{l}"
            if block.activation == "softmax":
                self.node("Softmax", [z], [a], axis=1)
            elif block.activation == "softplus":
                self.softplus(z, a, l, model.dtype)
            else:
                self.node(_ACTIVATION_OPS[block.activation], [z], [a])
            current = a
        if current != target:
            self.node("Identity", [current], [target])

    def scaled(self, scalers, source, dtype):
        """The name of ``source`` after each scaler's transform (in ``dtype``)."""
        current = source
        for i, scaler in enumerate(scalers):
            kind = type(scaler).__name__
            if kind == "MinMaxScaler":
                steps = [("Mul", scaler.scale_), ("Add", scaler.min_)]
            elif kind == "StandardScaler":
                steps = [("Sub", scaler.mean_), ("Div", scaler.scale_)]
            else:   # RobustScaler
                steps = [("Sub", scaler.center_), ("Div", scaler.scale_)]
            for op, values in steps:
                if values is None:     # with_mean=False, with_scaling=False, ...
                    continue
                out = f"{op.lower()}{i}"
                self.node(op, [current, self.constant(f"{out}_by", np.asarray(values,
                                                                             dtype=dtype))],
                          [out])
                current = out
            if kind == "MinMaxScaler" and scaler.clip:
                low, high = (np.array(v, dtype=dtype) for v in scaler.feature_range)
                self.node("Clip", [current, self.constant(f"low{i}", low),
                                   self.constant(f"high{i}", high)], [f"clip{i}"])
                current = f"clip{i}"
        return current

    def softplus(self, z, a, l, dtype):
        """a = max(z, 0) + log(1 + e^-|z|): finite for any z, in any dtype (the Softplus
        operator is float-only in onnxruntime and overflows in some runtimes)."""
        one = self.constant(f"one{l}", np.array(1.0, dtype=dtype))
        self.node("Abs", [z], [f"abs{l}"])
        self.node("Neg", [f"abs{l}"], [f"neg{l}"])
        self.node("Exp", [f"neg{l}"], [f"exp{l}"])
        self.node("Add", [f"exp{l}", one], [f"sum{l}"])
        self.node("Log", [f"sum{l}"], [f"log{l}"])
        self.node("Relu", [z], [f"relu{l}"])
        self.node("Add", [f"relu{l}", f"log{l}"], [a])

    def model(self, model, outputs):
        helper = self.onnx.helper
        elem = helper.np_dtype_to_tensor_dtype
        inputs = [helper.make_tensor_value_info("X", elem(np.dtype(model.dtype)),
                                                ["batch", model.n_inputs])]
        outs = [helper.make_tensor_value_info(name, elem(np.dtype(dtype)), shape)
                for name, dtype, shape in outputs]
        graph = helper.make_graph(self.nodes, "fastnn", inputs, outs, self.initializers)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="fastnn", producer_version=__version__)
        proto.ir_version = IR_VERSION
        return proto


def _folded(block, dtype):
    """(W, b) of a block's Gemm: the Dense's, or with its BatchNorm folded in."""
    W = np.asarray(block.layer.W, dtype=np.float64)
    if block.norm is None:
        return W.astype(dtype), np.asarray(block.layer.b, dtype=dtype).copy()
    norm = block.norm
    s = np.asarray(norm.gamma, np.float64) / np.sqrt(np.asarray(norm.running_var, np.float64)
                                                     + norm.eps)
    shift = np.asarray(norm.beta, np.float64) - np.asarray(norm.running_mean, np.float64) * s
    return (W * s[:, None]).astype(dtype), shift.astype(dtype)
