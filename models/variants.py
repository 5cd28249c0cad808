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

Deterministic like generate.py: the same bytes on every run.
"""

import argparse
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
        "gray_input": small_model("gray_input", [helper.make_node("Identity", ["image"], ["out"])],
                                  [], ["N", 1, "H", "W"], ["N", 1, "H", "W"]),
    }
    for name, model in models.items():
        generate.write(os.path.join(args.out, name + ".onnx"), model.SerializeToString())
    generate.write(os.path.join(args.out, "colour_classifier_224.labels"),
                   ("\n".join(generate.COLOUR_LABELS) + "\n").encode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
