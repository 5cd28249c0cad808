#!/usr/bin/python3
"""Writes the benchmark models: realistic-size networks with random weights.

    /usr/bin/python3 bench/models/generate.py --out DIR

Writes into DIR (created if missing):

  mcnn_density_b1.onnx    an MCNN-style crowd density network (Zhang et al.,
  mcnn_density_dyn.onnx   CVPR 2016: three parallel conv columns with large,
                          medium and small kernels, two 2x2 max-pools, the
                          columns concatenated and fused by a 1x1 conv to one
                          channel, ReLU), 3 input channels, ~134k parameters.
                          Input "image" float32 [1,3,H,W] (b1: the batch is
                          fixed at 1) or [N,3,H,W] (dyn); H and W dynamic.
                          Output "density" float32 [N,1,H/4,W/4] (H, W
                          multiples of 4); its sum is the count. Meant to be
                          run at 640x480 (~8 G multiply-adds an image).
  mobilenet_cls_b1.onnx   a MobileNetV1 classifier, width multiplier 0.5
  mobilenet_cls_dyn.onnx  (Howard et al. 2017: a 3x3 stride-2 conv, 13
                          depthwise-separable blocks, BatchNorm folded into
                          the conv biases, ReLU6 as Clip(0, 6), global
                          average pool, Gemm to 1000 classes, Softmax),
                          ~1.33M parameters, ~150 M multiply-adds an image.
                          Input "image" float32 [1,3,224,224] (b1) or
                          [N,3,224,224] (dyn); output "probabilities" float32
                          [N,1000].
  mobilenet_cls.labels    1000 class names, one a line (class_0000 ...).

The weights are random (no training): numpy's RandomState with a fixed seed
per network, He-normal scaling (std sqrt(2 / fan_in)) so that activations
keep their scale through the layers, as a trained network's do. What the
networks compute is meaningless; what they cost is that of the real ones,
which is what the benchmarks measure. The b1 and dyn files of a network
hold the same weights and differ only in the batch dimension of their input
and output.

Deterministic: the same bytes on every run (fixed seeds, producer name and
version, no timestamps). Opset 13, IR version 8, numpy and onnx only; every
model passes onnx.checker.check_model(full_check=True).
"""

import argparse
import os
import sys

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from generate import write  # noqa: E402  (models/generate.py: atomic file writes)

OPSET = 13
IR_VERSION = 8
PRODUCER = "inferd-bench-models"
PRODUCER_VERSION = "1"

MCNN_SEED = 20261121
MOBILENET_SEED = 20261122

# MCNN columns: (kernel, output channels) per conv; "pool" is a 2x2 max-pool.
# The original network's (for a grey input; here RGB).
MCNN_COLUMNS = [
    [(9, 16), "pool", (7, 32), "pool", (7, 16), (7, 8)],
    [(7, 20), "pool", (5, 40), "pool", (5, 20), (5, 10)],
    [(5, 24), "pool", (3, 48), "pool", (3, 24), (3, 12)],
]
# The fusing 1x1 conv's weights are He-scaled (made positive) and then
# multiplied by this, so that the density map's sum (the count) on a
# photo-like 640x480 image is tens, not thousands.
MCNN_FUSE_SCALE = 0.002
MCNN_FUSE_BIAS = 0.0

# MobileNetV1 at width 0.5: the first conv's channels, then (channels, stride)
# of each depthwise-separable block.
MOBILENET_FIRST = 16
MOBILENET_BLOCKS = [
    (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2),
    (256, 1), (256, 1), (256, 1), (256, 1), (256, 1),
    (512, 2), (512, 1),
]
MOBILENET_CLASSES = 1000
MOBILENET_SIDE = 224
# Logit scale: the Gemm's weights are std sqrt(1 / fan_in) times this, so
# that the softmax is neither flat nor one-hot.
MOBILENET_LOGIT_SCALE = 16.0


class Graph:
    """A small builder: unique node names, initializers from numpy arrays."""

    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.count = 0
        self.params = 0

    def const(self, name, array):
        array = np.asarray(array)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, name, array):
        self.params += int(np.asarray(array).size)
        return self.const(name, array)

    def op(self, op_type, inputs, name, **attrs):
        self.count += 1
        self.nodes.append(helper.make_node(op_type, inputs, [name],
                                           name="%s_%d" % (op_type, self.count), **attrs))
        return name

    def he(self, shape, fan_in, scale=1.0):
        std = scale * np.sqrt(2.0 / fan_in)
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def conv(self, x, cin, cout, k, name, stride=1, group=1, scale=1.0, bias=None):
        """A k x k conv with 'same' padding (folded BatchNorm: a bias)."""
        fan_in = (cin // group) * k * k
        w = self.weight(name + "_w", self.he((cout, cin // group, k, k), fan_in, scale))
        if bias is None:
            # A folded BatchNorm's shift: small, centred on zero.
            bias = (self.rng.standard_normal(cout) * 0.01).astype(np.float32)
        b = self.weight(name + "_b", np.asarray(bias, dtype=np.float32).reshape(cout))
        p = k // 2
        return self.op("Conv", [x, w, b], name, kernel_shape=[k, k], strides=[stride, stride],
                       pads=[p, p, p, p], group=group)

    def relu(self, x, name):
        return self.op("Relu", [x], name)

    def relu6(self, x, name):
        lo = self.const(name + "_lo", np.array(0.0, np.float32))
        hi = self.const(name + "_hi", np.array(6.0, np.float32))
        return self.op("Clip", [x, lo, hi], name)

    def maxpool2(self, x, name):
        return self.op("MaxPool", [x], name, kernel_shape=[2, 2], strides=[2, 2])


def finish(g, name, doc, inputs, outputs, metadata):
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits, doc_string=doc)
    model = helper.make_model(graph, producer_name=PRODUCER, producer_version=PRODUCER_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)], doc_string=doc)
    model.ir_version = IR_VERSION
    model.model_version = 1
    model.domain = "org.inferd.bench"
    metadata = dict(metadata, parameters=str(g.params))
    helper.set_model_props(model, metadata)
    checker.check_model(model, full_check=True)
    return model


def mcnn_density(fixed_batch):
    g = Graph(np.random.RandomState(MCNN_SEED))
    columns = []
    for c, layers in enumerate(MCNN_COLUMNS):
        x, cin = "image", 3
        for i, layer in enumerate(layers):
            name = "col%d_%d" % (c + 1, i + 1)
            if layer == "pool":
                x = g.maxpool2(x, name + "_pool")
                continue
            k, cout = layer
            x = g.relu(g.conv(x, cin, cout, k, name + "_conv"), name + "_relu")
            cin = cout
        columns.append((x, cin))
    merged = g.op("Concat", [x for x, _ in columns], "merged", axis=1)
    channels = sum(c for _, c in columns)
    # The fuse conv: non-negative weights (a density is a positive mix of
    # the columns' features; zero-mean weights leave the map all zero after
    # the ReLU), scaled down.
    w = np.abs(g.he((1, channels, 1, 1), channels, MCNN_FUSE_SCALE))
    fuse = g.op("Conv", [merged, g.weight("fuse_w", w),
                         g.weight("fuse_b", np.array([MCNN_FUSE_BIAS], np.float32))], "fuse",
                kernel_shape=[1, 1])
    g.relu(fuse, "density")
    n = 1 if fixed_batch else "N"
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [n, 3, "H", "W"])]
    outputs = [helper.make_tensor_value_info("density", TensorProto.FLOAT,
                                             [n, 1, "H_4", "W_4"])]
    doc = ("MCNN-style crowd density network with random weights (a benchmark model: "
           "realistic cost, meaningless output). Input 'image' [%s,3,H,W] RGB in [0,1]; "
           "output 'density' [%s,1,H/4,W/4], whose sum is the count."
           % ("1" if fixed_batch else "N", "1" if fixed_batch else "N"))
    return finish(g, "mcnn_density", doc, inputs, outputs, {
        "description": doc,
        "task": "counting",
        "output_stride": "4",
        "input_layout": "NCHW RGB float32 [0,1]",
    })


def mobilenet_cls(fixed_batch):
    g = Graph(np.random.RandomState(MOBILENET_SEED))
    x = g.relu6(g.conv("image", 3, MOBILENET_FIRST, 3, "conv0", stride=2), "conv0_relu6")
    cin = MOBILENET_FIRST
    for i, (cout, stride) in enumerate(MOBILENET_BLOCKS):
        name = "block%d" % (i + 1)
        x = g.relu6(g.conv(x, cin, cin, 3, name + "_dw", stride=stride, group=cin),
                    name + "_dw_relu6")
        x = g.relu6(g.conv(x, cin, cout, 1, name + "_pw"), name + "_pw_relu6")
        cin = cout
    pooled = g.op("GlobalAveragePool", [x], "pooled")
    flat = g.op("Flatten", [pooled], "features", axis=1)
    w = (g.rng.standard_normal((MOBILENET_CLASSES, cin)) * MOBILENET_LOGIT_SCALE
         / np.sqrt(cin)).astype(np.float32)
    b = np.zeros(MOBILENET_CLASSES, np.float32)
    logits = g.op("Gemm", [flat, g.weight("fc_w", w), g.weight("fc_b", b)], "logits", transB=1)
    g.op("Softmax", [logits], "probabilities", axis=1)
    n = 1 if fixed_batch else "N"
    side = MOBILENET_SIDE
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [n, 3, side, side])]
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                             [n, MOBILENET_CLASSES])]
    doc = ("MobileNetV1 (width 0.5) classifier with random weights (a benchmark model: "
           "realistic cost, meaningless output). Input 'image' [%s,3,%d,%d] RGB in [0,1]; "
           "output 'probabilities' [%s,%d] (a softmax)."
           % (n, side, side, n, MOBILENET_CLASSES))
    return finish(g, "mobilenet_cls", doc, inputs, outputs, {
        "description": doc,
        "task": "classification",
        "input_layout": "NCHW RGB float32 [0,1]",
    })


def labels():
    return "".join("class_%04d\n" % i for i in range(MOBILENET_CLASSES)).encode("ascii")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    ap.add_argument("--quiet", action="store_true", help="do not list what was written")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name, build, fixed in (("mcnn_density_b1", mcnn_density, True),
                               ("mcnn_density_dyn", mcnn_density, False),
                               ("mobilenet_cls_b1", mobilenet_cls, True),
                               ("mobilenet_cls_dyn", mobilenet_cls, False)):
        model = build(fixed)
        data = model.SerializeToString()
        write(os.path.join(args.out, name + ".onnx"), data)
        if not args.quiet:
            params = {p.key: p.value for p in model.metadata_props}["parameters"]
            print("%s.onnx: %s parameters, %d bytes" % (name, params, len(data)))
    write(os.path.join(args.out, "mobilenet_cls.labels"), labels())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
