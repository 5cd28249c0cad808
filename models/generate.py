#!/usr/bin/python3
"""Writes inferd's default ONNX models, with hand-set weights (no training).

    /usr/bin/python3 models/generate.py --out DIR

Writes DIR/dot_density.onnx, DIR/colour_classifier.onnx,
DIR/colour_classifier.labels and DIR/scratch_segmenter.onnx. The output is
deterministic: the same bytes on every run (no timestamps, no random numbers,
a fixed producer name and version). See models/README.md for the designs.

Every model takes one input "image": float32 [N,3,H,W], RGB in [0,1], with
N, H and W dynamic. Needs only numpy and onnx (opset 13, IR version 8).
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, checker, helper, numpy_helper

OPSET = 13
IR_VERSION = 8
PRODUCER = "inferd-models"
PRODUCER_VERSION = "1"

COLOUR_LABELS = ["black", "white", "red", "green", "blue", "yellow", "cyan", "magenta"]
COLOUR_PROTOTYPES = [
    (0, 0, 0), (1, 1, 1), (1, 0, 0), (0, 1, 0),
    (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1),
]

# dot_density parameters
DOT_STRIDE = 4          # the density map is at 1/4 resolution
DOT_THRESHOLD = 0.35    # grey level where a pixel starts to count as dot
DOT_GAIN = 5.0          # soft-mask slope: fully "dot" at 0.35 + 1/5 = 0.55
DOT_WINDOW = 21         # box that measures the area of the dot a pixel is in
DOT_MIN_AREA = 3.0      # specks smaller than this (in mask mass) count < 1
DOT_BLUR = 3            # box mean that removes pixel noise before the mask
DOT_PEAK = (5, 3)       # two box means (~ a Gaussian, sigma 1.6): one peak a dot

# colour_classifier parameters
COLOUR_SHARPNESS = 20.0

# scratch_segmenter parameters
SCRATCH_WINDOW = 15     # box of the local mean
SCRATCH_THRESHOLD = 0.15
SCRATCH_GAIN = 8.0


class Graph:
    """A small builder: unique node names, initializers from numpy arrays."""

    def __init__(self):
        self.nodes = []
        self.inits = []
        self.count = 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, name, **attrs):
        self.count += 1
        self.nodes.append(helper.make_node(op_type, inputs, [name],
                                           name="%s_%d" % (op_type, self.count), **attrs))
        return name

    def box_mean(self, x, size, name, include_pad):
        """Separable size x size box mean with 'same' padding (AveragePool).

        include_pad=False divides by the in-image pixels only: the mean of
        what the box covers, also at the borders (both passes are exact: every
        row window of the second pass spans the same columns).
        include_pad=True divides by size*size: a box sum / (size*size)."""
        r = (size - 1) // 2
        c = 1 if include_pad else 0
        h = self.op("AveragePool", [x], name + "_h", kernel_shape=[1, size], pads=[0, r, 0, r],
                    strides=[1, 1], count_include_pad=c)
        return self.op("AveragePool", [h], name + "_v", kernel_shape=[size, 1], pads=[r, 0, r, 0],
                       strides=[1, 1], count_include_pad=c)

    def gray(self, x):
        """RGB -> grey: the mean of the channels, [N,1,H,W].

        (Split + Sum: ONNX Runtime's ReduceMean over axis 1, and a 1x1 Conv
        in its NCHWc layout, are several times slower for one channel.)"""
        self.count += 1
        chans = ["red", "green", "blue"]
        self.nodes.append(helper.make_node("Split", [x], chans, name="Split_%d" % self.count,
                                           axis=1))
        total = self.op("Sum", chans, "rgb_sum")
        return self.scale(total, 1.0 / 3.0, "gray")

    def scale(self, x, factor, name):
        return self.op("Mul", [x, self.const(name + "_factor", np.array(factor, np.float32))],
                       name)

    def soft_mask(self, x, threshold, gain, name):
        """clip((x - threshold) * gain, 0, 1)."""
        t = self.const(name + "_t", np.array(threshold, dtype=np.float32))
        k = self.const(name + "_k", np.array(gain, dtype=np.float32))
        lo = self.const(name + "_lo", np.array(0.0, dtype=np.float32))
        hi = self.const(name + "_hi", np.array(1.0, dtype=np.float32))
        d = self.op("Sub", [x, t], name + "_sub")
        s = self.op("Mul", [d, k], name + "_mul")
        return self.op("Clip", [s, lo, hi], name)


def image_input():
    return helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])


def make_model(g, name, doc, outputs, metadata):
    graph = helper.make_graph(g.nodes, name, [image_input()], outputs, initializer=g.inits,
                              doc_string=doc)
    model = helper.make_model(graph, producer_name=PRODUCER, producer_version=PRODUCER_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              doc_string=doc)
    model.ir_version = IR_VERSION
    model.model_version = 1
    model.domain = "org.inferd"
    helper.set_model_props(model, metadata)
    checker.check_model(model, full_check=True)
    return model


def dot_density():
    g = Graph()
    gray = g.gray("image")
    # A 3x3 box mean removes pixel noise and keeps the sum of each dot.
    blur = g.box_mean(gray, DOT_BLUR, "blur", include_pad=True)
    # m: 1 on a dot, 0 on the background, soft on the anti-aliased rim.
    m = g.soft_mask(blur, DOT_THRESHOLD, DOT_GAIN, "mask")
    # A: the mask's mass within a 21x21 box (box mean x 441). A dot, with its
    # blurred rim, is at most ~12 px across, so for every pixel of an
    # isolated dot the box holds the whole dot and A is the dot's mass: the
    # sum of m / A over the dot is exactly 1. The floor of 3 keeps a stray
    # speck of mass a < 3 from counting as a whole dot (it counts a / 3).
    mean = g.box_mean(m, DOT_WINDOW, "area_mean", include_pad=True)
    area = g.scale(mean, float(DOT_WINDOW * DOT_WINDOW), "area")
    floor = g.const("area_floor", np.array(DOT_MIN_AREA, dtype=np.float32))
    area = g.op("Max", [area, floor], "area_floored")
    flat = g.op("Div", [m, area], "flat_density")
    # Two box means (5x5 then 3x3, ~ a Gaussian of sigma 1.6) spread each
    # dot's unit mass into one smooth peak; both keep the total.
    peak = flat
    for i, size in enumerate(DOT_PEAK):
        peak = g.box_mean(peak, size, "peak%d" % i, include_pad=True)
    # Sum-pool by 4: a 4x4 mean with stride 4 and end pads 3 (counted), x16,
    # gives ceil(H/4) x ceil(W/4) cells and keeps the total.
    st = DOT_STRIDE
    pooled = g.op("AveragePool", [peak], "pooled", kernel_shape=[st, st], strides=[st, st],
                  pads=[0, 0, st - 1, st - 1], count_include_pad=1)
    g.scale(pooled, float(st * st), "density")
    out = helper.make_tensor_value_info("density", TensorProto.FLOAT, ["N", 1, "H_4", "W_4"])
    doc = ("Counts bright round dots (4-10 px across) on a dark background. Output "
           "'density' [N,1,ceil(H/4),ceil(W/4)]: its sum is the number of dots, its local "
           "maxima sit on the dots (cell (i,j) covers pixels 4i..4i+3, 4j..4j+3). Dots "
           "closer than ~22 px centre to centre interact.")
    return make_model(g, "dot_density", doc, [out], {
        "description": doc,
        "task": "counting",
        "output_stride": str(DOT_STRIDE),
        "peak_threshold": "0.05",
        "input_layout": "NCHW RGB float32 [0,1]",
    })


def colour_classifier():
    g = Graph()
    c = np.asarray(COLOUR_PROTOTYPES, dtype=np.float32)             # [8,3]
    s = COLOUR_SHARPNESS
    # score_k = s * (2 x.c_k - |c_k|^2) = s * (|x|^2 - |x - c_k|^2): the softmax
    # over k is that of -s |x - c_k|^2, a soft nearest-prototype vote.
    # Pixels as rows: [N*H*W,3], so that the scores are one Gemm (bias
    # included) and the softmax runs over the innermost axis (ONNX Runtime's
    # Softmax over axis 1 of NCHW transposes internally: ~10x slower).
    w = (2.0 * s * c.T).astype(np.float32)                          # [3,8]
    b = (-s * (c * c).sum(axis=1)).astype(np.float32)               # [8]
    nhwc = g.op("Transpose", ["image"], "image_nhwc", perm=[0, 2, 3, 1])
    rows = g.op("Reshape", [nhwc, g.const("rows_shape", np.array([-1, 3], np.int64))], "rows")
    scores = g.op("Gemm", [rows, g.const("scores_w", w), g.const("scores_b", b)], "scores")
    soft = g.op("Softmax", [scores], "pixel_probabilities", axis=1)       # [N*H*W,8]
    # Back to [N,H*W,8] and the mean over the pixels: the fraction of the
    # image nearest each colour.
    shape = g.op("Shape", ["image"], "image_shape")
    n = g.op("Slice", [shape, g.const("n_start", np.array([0], np.int64)),
                       g.const("n_end", np.array([1], np.int64))], "batch")
    per_image = g.op("Concat", [n, g.const("group_tail", np.array([-1, 8], np.int64))],
                     "per_image_shape", axis=0)
    grouped = g.op("Reshape", [soft, per_image], "per_image")
    g.op("ReduceMean", [grouped], "probabilities", axes=[1], keepdims=0)
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 8])
    doc = ("Names the dominant colour of an image. Output 'probabilities' [N,8]: the "
           "fraction of pixels nearest each prototype colour (rows sum to 1); the argmax "
           "is the dominant colour. Labels: " + ", ".join(COLOUR_LABELS) + ".")
    return make_model(g, "colour_classifier", doc, [out], {
        "description": doc,
        "task": "classification",
        "labels": "\n".join(COLOUR_LABELS),
        "input_layout": "NCHW RGB float32 [0,1]",
    })


def scratch_segmenter():
    g = Graph()
    gray = g.gray("image")
    # Local mean over a 15x15 box of the in-image pixels only
    # (count_include_pad=0), so that borders are not darkened.
    mean = g.box_mean(gray, SCRATCH_WINDOW, "local_mean", include_pad=False)
    dark = g.op("Sub", [mean, gray], "darkness")
    m = g.soft_mask(dark, SCRATCH_THRESHOLD, SCRATCH_GAIN, "soft_mask")
    # A 3x3 max filter bridges one-pixel gaps: a scratch is one 8-connected region.
    g.op("MaxPool", [m], "mask", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    out = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, "H", "W"])
    doc = ("Finds dark scratches on a bright surface. Output 'mask' [N,1,H,W] in [0,1]: "
           "how much darker than its 15x15 neighbourhood each pixel is; threshold at 0.5 "
           "and take 8-connected regions to get one region per scratch.")
    return make_model(g, "scratch_segmenter", doc, [out], {
        "description": doc,
        "task": "segmentation",
        "output_stride": "1",
        "mask_threshold": "0.5",
        "input_layout": "NCHW RGB float32 [0,1]",
    })


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name, build in (("dot_density", dot_density), ("colour_classifier", colour_classifier),
                        ("scratch_segmenter", scratch_segmenter)):
        write(os.path.join(args.out, name + ".onnx"), build().SerializeToString())
    write(os.path.join(args.out, "colour_classifier.labels"),
          ("\n".join(COLOUR_LABELS) + "\n").encode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
