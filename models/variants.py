#!/usr/bin/python3
"""Writes the default models again as users' exports usually declare them.

    /usr/bin/python3 models/variants.py --out DIR

The same graphs and weights as models/generate.py, with the image input
declared the other usual ways, so that tests can check that every path that
feeds a model obeys what the model declares:

  dot_density_b1.onnx            image [1,3,H,W]    a fixed batch of 1 (torch.onnx.export's default)
  dot_density_b4.onnx            image [4,3,H,W]    a fixed batch of 4
  dot_density_dyn.onnx           image [N,3,H,W]    a dynamic batch (as the default model)
  colour_classifier_224.onnx     image [1,3,224,224] fixed batch and input size
  colour_classifier_224.labels   its labels
  fails_unless_4x4.onnx          image [N,3,H,W] + a constant [1,3,4,4]: declares any size, runs
                                 only 4x4 (a graph that fails inside the run)
  gray_input.onnx                image [N,1,H,W] -> Identity: a model no estimator can serve
                                 as it is (with channelOrder gray, one can)
  dot_density_u8_nhwc.onnx       image uint8 [1,H,W,3]: the pixels as they are, channels last,
                                 a fixed batch of 1 (as the service seed's csrnet_uint8.onnx)
  colour_classifier_bgr.onnx     image [N,3,H,W]: BGR, (pixel - mean) / std with the ImageNet
                                 mean and std of 0..255 pixels (BGR_MEAN, BGR_STD), as
                                 Caffe-style and OpenCV DNN exports take it
  colour_classifier_bgr_meta.onnx  the same, saying its input contract in its metadata_props
                                 ("inferd.input", docs/models.md)
  colour_classifier_bad_meta.onnx  the same with a contract that names no channel order

Deterministic like generate.py: the same bytes on every run.
"""

import argparse
import json
import os
import sys

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402


def redeclare(model, dims):
    """Declares the image input (and the batch of every output) as dims."""
    def set_dims(value_info, new):
        shape = value_info.type.tensor_type.shape
        for d, v in zip(shape.dim, new):
            d.Clear()
            if isinstance(v, str):
                d.dim_param = v
            else:
                d.dim_value = v
    set_dims(model.graph.input[0], dims)
    for out in model.graph.output:
        set_dims(out, [dims[0]])
    checker.check_model(model, full_check=True)
    return model


BGR_MEAN = [103.53, 116.28, 123.675]
BGR_STD = [57.375, 57.12, 58.395]


def prepend(model, dtype, dims, nodes, inits, name):
    """A new image input of dtype and dims, turned by nodes (ending in
    "image_pre") into what the graph's old input was."""
    g = model.graph
    for node in g.node:
        node.input[:] = ["image_pre" if i == "image" else i for i in node.input]
    old = list(g.node)
    del g.node[:]
    g.node.extend(nodes + old)
    g.initializer.extend(inits)
    del g.input[:]
    g.input.extend([helper.make_tensor_value_info("image", dtype, dims)])
    g.name = name
    for out in g.output:  # the batch follows the new input's
        out.type.tensor_type.shape.dim[0].Clear()
        if isinstance(dims[0], str):
            out.type.tensor_type.shape.dim[0].dim_param = dims[0]
        else:
            out.type.tensor_type.shape.dim[0].dim_value = dims[0]
    checker.check_model(model, full_check=True)
    return model


def uint8_nhwc(model):
    """uint8 [1,H,W,3] -> float [1,3,H,W] in [0,1]."""
    nodes = [
        helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["image_f", "inv255"], ["image_unit"]),
        helper.make_node("Transpose", ["image_unit"], ["image_pre"], perm=[0, 3, 1, 2]),
    ]
    inits = [numpy_helper.from_array(np.array(1.0 / 255.0, np.float32), "inv255")]
    return prepend(model, TensorProto.UINT8, [1, "H", "W", 3], nodes, inits,
                   "dot_density_u8_nhwc")


def bgr_mean_std(model):
    """BGR (pixel - BGR_MEAN) / BGR_STD -> RGB in [0,1]."""
    nodes = [
        helper.make_node("Mul", ["image", "bgr_std"], ["image_scaled"]),
        helper.make_node("Add", ["image_scaled", "bgr_mean"], ["image_bgr"]),
        helper.make_node("Gather", ["image_bgr", "to_rgb"], ["image_rgb"], axis=1),
        helper.make_node("Mul", ["image_rgb", "inv255_bgr"], ["image_pre"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(BGR_STD, np.float32).reshape(1, 3, 1, 1), "bgr_std"),
        numpy_helper.from_array(np.array(BGR_MEAN, np.float32).reshape(1, 3, 1, 1), "bgr_mean"),
        numpy_helper.from_array(np.array([2, 1, 0], np.int64), "to_rgb"),
        numpy_helper.from_array(np.array(1.0 / 255.0, np.float32), "inv255_bgr"),
    ]
    return prepend(model, TensorProto.FLOAT, ["N", 3, "H", "W"], nodes, inits,
                   "colour_classifier_bgr")


def with_contract(model, contract):
    """model with its input contract in metadata_props["inferd.input"]."""
    entry = model.metadata_props.add()
    entry.key = "inferd.input"
    entry.value = json.dumps(contract, sort_keys=True)
    return model


def small_model(name, nodes, inits, in_dims, out_dims):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, in_dims)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_dims)], initializer=inits)
    model = helper.make_model(graph, producer_name=generate.PRODUCER,
                              producer_version=generate.PRODUCER_VERSION,
                              opset_imports=[helper.make_opsetid("", generate.OPSET)])
    model.ir_version = generate.IR_VERSION
    checker.check_model(model, full_check=True)
    return model


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    models = {
        "dot_density_b1": redeclare(generate.dot_density(), [1, 3, "H", "W"]),
        "dot_density_b4": redeclare(generate.dot_density(), [4, 3, "H", "W"]),
        "dot_density_dyn": redeclare(generate.dot_density(), ["N", 3, "H", "W"]),
        "colour_classifier_224": redeclare(generate.colour_classifier(), [1, 3, 224, 224]),
        "fails_unless_4x4": small_model(
            "fails_unless_4x4", [helper.make_node("Add", ["image", "bias"], ["out"])],
            [numpy_helper.from_array(np.zeros((1, 3, 4, 4), np.float32), "bias")],
            ["N", 3, "H", "W"], ["N", 3, "H", "W"]),
        "dot_density_u8_nhwc": uint8_nhwc(generate.dot_density()),
        "colour_classifier_bgr": bgr_mean_std(generate.colour_classifier()),
        "colour_classifier_bgr_meta": with_contract(
            bgr_mean_std(generate.colour_classifier()),
            {"channelOrder": "bgr", "scale": 1, "mean": BGR_MEAN, "std": BGR_STD}),
        "colour_classifier_bad_meta": with_contract(
            bgr_mean_std(generate.colour_classifier()), {"channelOrder": "bgrx"}),
        "gray_input": small_model("gray_input", [helper.make_node("Identity", ["image"], ["out"])],
                                  [], ["N", 1, "H", "W"], ["N", 1, "H", "W"]),
    }
    for name, model in models.items():
        generate.write(os.path.join(args.out, name + ".onnx"), model.SerializeToString())
    for labels in ("colour_classifier_224.labels", "colour_classifier_bgr.labels",
                   "colour_classifier_bgr_meta.labels", "colour_classifier_bad_meta.labels"):
        generate.write(os.path.join(args.out, labels),
                       ("\n".join(generate.COLOUR_LABELS) + "\n").encode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
