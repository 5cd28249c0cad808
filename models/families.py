#!/usr/bin/python3
"""Writes small models in the output shapes of the common model families,
with hand-set weights so that the right answer is known, for the estimator
families' tests (docs/models.md).

    /usr/bin/python3 models/families.py --out DIR

Detectors of 32x32 red and green squares on a dark background, input
float32 [1,3,128,128] RGB in [0,1] (fixed: served through a letterbox):

  squares_yolov8.onnx   output0 [1,6,A]: cx, cy, w, h, then the scores of red, green
  squares_yolov5.onnx   output0 [1,A,7]: cx, cy, w, h, objectness, the two class scores
  squares_ssd.onnx      boxes [1,A,4] (x0, y0, x1, y1 in [0,1]) and scores [1,A,2]
  squares.labels        red, green

A CTC text recogniser of digit strips, input float32 [N,3,8,W] RGB in [0,1]
(any width), output [N,W,11]: per column, the probabilities of the blank
(black or white: gaps and margins) and ten digits, each digit drawn as a
band of its own colour (DIGIT_COLOURS), the nearest colour of the column's
mean winning:

  ctc_digits.onnx       probabilities [N,W,11], the blank first
  digits.charset        0 to 9, one a line

A DB-style text detector, input float32 [N,3,H,W] (any size), output the
probability map [N,1,H,W] of text kernels: dark pixels (clip(10 (0.5 -
grey), 0, 1)), gaps between glyphs closed by a 5x5 dilation, then shrunk by
a 9x9 erosion: a line's kernel is the line less 2 px on every side (as DB
is trained to shrink), which the text family's unclip grows back.

  db_text.onnx          maps [N,1,H,W]

How they find a square: a pixel is "red" by clip(4 (R - G), 0, 1) and
"green" by clip(4 (G - R), 0, 1) (grey padding and black are neither); the
score of anchor (i, j) (one per input pixel, A = 128 x 128) is the mean of
that over the 32x32 window centred there, exactly 1 where the window is the
square; its box is that window. Non-maximum suppression leaves one box per
square. Deterministic: the same bytes on every run.
"""

import argparse
import os
import sys

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402

SIZE = 128      # the input's side
SQUARE = 32     # the side of what they detect
LABELS = ["red", "green"]
# The colour of each digit 0..9 (the blank is black); far enough apart that
# the nearest-colour vote of a pure band is near certain.
DIGIT_COLOURS = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1),
                 (0.5, 1, 0.5), (1, 0.5, 0), (0.5, 0.5, 0.5), (0.5, 0, 1)]
SHARPNESS = 30.0


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def head_nodes():
    """Nodes from "image" to "scores" [1,2,A]; their initialisers."""
    half = SQUARE // 2
    nodes = [
        helper.make_node("Slice", ["image", "c0", "c1", "axis1"], ["red_in"]),
        helper.make_node("Slice", ["image", "c1", "c2", "axis1"], ["green_in"]),
        helper.make_node("Sub", ["red_in", "green_in"], ["diff"]),
        helper.make_node("Mul", ["diff", "gain"], ["diff4"]),
        helper.make_node("Neg", ["diff4"], ["ndiff4"]),
        helper.make_node("Clip", ["diff4", "zero", "one"], ["red"]),
        helper.make_node("Clip", ["ndiff4", "zero", "one"], ["green"]),
        helper.make_node("Concat", ["red", "green"], ["masks"], axis=1),
        helper.make_node("AveragePool", ["masks"], ["window"], kernel_shape=[SQUARE, SQUARE],
                         strides=[1, 1], pads=[half, half, half - 1, half - 1],
                         count_include_pad=1),
        helper.make_node("Reshape", ["window", "scores_shape"], ["scores"]),
    ]
    inits = [
        const("c0", np.array([0], np.int64)), const("c1", np.array([1], np.int64)),
        const("c2", np.array([2], np.int64)), const("axis1", np.array([1], np.int64)),
        const("gain", np.array(4.0, np.float32)), const("zero", np.array(0.0, np.float32)),
        const("one", np.array(1.0, np.float32)),
        const("scores_shape", np.array([1, 2, SIZE * SIZE], np.int64)),
    ]
    return nodes, inits


def anchor_boxes():
    """cx, cy, w, h of every anchor: [4, A] (row-major anchors)."""
    i, j = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    cx, cy = j.reshape(-1).astype(np.float32), i.reshape(-1).astype(np.float32)
    wh = np.full(SIZE * SIZE, SQUARE, np.float32)
    return np.stack([cx, cy, wh, wh])


def model(name, nodes, inits, outputs, image=(1, 3, SIZE, SIZE)):
    """A checked model of nodes whose input is "image" float32 of dims image."""
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(image))],
        outputs, initializer=inits)
    m = helper.make_model(graph, producer_name=generate.PRODUCER,
                          producer_version=generate.PRODUCER_VERSION,
                          opset_imports=[helper.make_opsetid("", generate.OPSET)])
    m.ir_version = generate.IR_VERSION
    checker.check_model(m, full_check=True)
    return m


def yolov8():
    nodes, inits = head_nodes()
    inits.append(const("anchors", anchor_boxes()[None]))                      # [1,4,A]
    nodes.append(helper.make_node("Concat", ["anchors", "scores"], ["output0"], axis=1))
    return model("squares_yolov8", nodes, inits, [
        helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, SIZE * SIZE])])


def yolov5():
    nodes, inits = head_nodes()
    inits += [const("anchors", anchor_boxes()[None]), const("eps", np.array(1e-6, np.float32))]
    nodes += [
        helper.make_node("ReduceMax", ["scores"], ["objectness"], axes=[1], keepdims=1),
        helper.make_node("Add", ["objectness", "eps"], ["objectness_eps"]),
        helper.make_node("Div", ["scores", "objectness_eps"], ["class_scores"]),
        helper.make_node("Concat", ["anchors", "objectness", "class_scores"], ["rows"], axis=1),
        helper.make_node("Transpose", ["rows"], ["output0"], perm=[0, 2, 1]),
    ]
    return model("squares_yolov5", nodes, inits, [
        helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, SIZE * SIZE, 7])])


def ssd():
    nodes, inits = head_nodes()
    cx, cy, w, h = anchor_boxes()
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) / SIZE  # [A,4]
    inits.append(const("boxes_const", xyxy.astype(np.float32)[None]))
    nodes += [
        helper.make_node("Identity", ["boxes_const"], ["boxes"]),
        helper.make_node("Transpose", ["scores"], ["scores_t"], perm=[0, 2, 1]),
        helper.make_node("Identity", ["scores_t"], ["class_scores"]),
    ]
    return model("squares_ssd", nodes, inits, [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, SIZE * SIZE, 4]),
        helper.make_tensor_value_info("class_scores", TensorProto.FLOAT, [1, SIZE * SIZE, 2])])


def ctc_digits():
    protos = np.asarray([(0, 0, 0), (1, 1, 1)] + DIGIT_COLOURS, np.float32)  # [12,3]
    # score_k = s (2 x.c_k - |c_k|^2): the softmax over k is that of
    # -s |x - c_k|^2, the nearest prototype's vote (as colour_classifier);
    # black and white are both the blank: their probabilities are summed.
    w = (2.0 * SHARPNESS * protos.T).astype(np.float32)                      # [3,12]
    b = (-SHARPNESS * (protos * protos).sum(axis=1)).astype(np.float32)      # [12]
    merge = np.zeros((12, 11), np.float32)
    merge[0, 0] = merge[1, 0] = 1
    for k in range(10):
        merge[k + 2, k + 1] = 1
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["columns"], axes=[2], keepdims=0),  # [N,3,W]
        helper.make_node("Transpose", ["columns"], ["steps"], perm=[0, 2, 1]),          # [N,W,3]
        helper.make_node("Shape", ["steps"], ["steps_shape"]),
        helper.make_node("Reshape", ["steps", "rows_shape"], ["rows"]),                  # [N*W,3]
        helper.make_node("Gemm", ["rows", "w", "b"], ["logits"]),                        # [N*W,12]
        helper.make_node("Softmax", ["logits"], ["probs12"], axis=1),
        helper.make_node("MatMul", ["probs12", "merge"], ["probs"]),                     # [N*W,11]
        helper.make_node("Slice", ["steps_shape", "s0", "s2"], ["nw"]),
        helper.make_node("Concat", ["nw", "classes"], ["out_shape"], axis=0),
        helper.make_node("Reshape", ["probs", "out_shape"], ["output"]),                 # [N,W,11]
    ]
    inits = [const("rows_shape", np.array([-1, 3], np.int64)), const("w", w), const("b", b),
             const("merge", merge),
             const("s0", np.array([0], np.int64)), const("s2", np.array([2], np.int64)),
             const("classes", np.array([11], np.int64))]
    return model("ctc_digits", nodes, inits, [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", "W", 11])],
                 image=["N", 3, 8, "W"])


def db_text():
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),   # [N,1,H,W]
        helper.make_node("Sub", ["half", "grey"], ["darker"]),
        helper.make_node("Mul", ["darker", "ten"], ["darker10"]),
        helper.make_node("Clip", ["darker10", "zero", "one"], ["dark"]),
        helper.make_node("MaxPool", ["dark"], ["closed"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
        helper.make_node("Neg", ["closed"], ["neg"]),
        helper.make_node("MaxPool", ["neg"], ["neg_eroded"], kernel_shape=[9, 9],
                         pads=[4, 4, 4, 4]),
        helper.make_node("Neg", ["neg_eroded"], ["maps"]),
    ]
    inits = [const("half", np.array(0.5, np.float32)), const("ten", np.array(10.0, np.float32)),
             const("zero", np.array(0.0, np.float32)), const("one", np.array(1.0, np.float32))]
    return model("db_text", nodes, inits, [helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["N", 1, "H", "W"])],
                 image=["N", 3, "H", "W"])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name, m in [("squares_yolov8", yolov8()), ("squares_yolov5", yolov5()),
                    ("squares_ssd", ssd()), ("ctc_digits", ctc_digits()),
                    ("db_text", db_text())]:
        generate.write(os.path.join(args.out, name + ".onnx"), m.SerializeToString())
    generate.write(os.path.join(args.out, "squares.labels"),
                   ("\n".join(LABELS) + "\n").encode("ascii"))
    generate.write(os.path.join(args.out, "digits.charset"),
                   ("\n".join(str(d) for d in range(10)) + "\n").encode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
