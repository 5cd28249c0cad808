#!/usr/bin/python3
"""Writes the messages the streams and rules tests publish, from the synthetic
test images (scripts/gen_images.py) and their ground truth.

    rules_data.py DATA_DIR OUT_DIR

OUT_DIR gets:
  jpeg/NN.jpg          each colour image as a JPEG (the seeds' flow publishes JPEG bytes)
  labels.txt           the right label of each, one per line, in file order
  scratches.jsonl      one {"image": "<base64 PNG>"} message per line (the seed's
                       openvino_demo messages)
  defects.txt          the right defect count of each, one per line, in order
  images.txt           the base64 of each scratch image, one per line, in order
  dots/NN.<ext>        the people-count images as they are (PNG or JPEG)
  people.txt           the right count of each, one per line, in order
"""
import base64
import io
import json
import os
import sys

from PIL import Image

data, out = sys.argv[1], sys.argv[2]
truth = json.load(open(os.path.join(data, "truth.json")))
os.makedirs(os.path.join(out, "jpeg"), exist_ok=True)

with open(os.path.join(out, "labels.txt"), "w") as labels:
    for i, c in enumerate(truth["colours"]):
        img = Image.open(os.path.join(data, c["file"])).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=92)
        with open(os.path.join(out, "jpeg", f"{i:02d}.jpg"), "wb") as f:
            f.write(buf.getvalue())
        labels.write(c["label"] + "\n")

os.makedirs(os.path.join(out, "dots"), exist_ok=True)
with open(os.path.join(out, "people.txt"), "w") as people:
    for i, d in enumerate(truth["dots"]):
        ext = os.path.splitext(d["file"])[1]
        with open(os.path.join(out, "dots", f"{i:02d}{ext}"), "wb") as f:
            f.write(open(os.path.join(data, d["file"]), "rb").read())
        people.write(f"{d['count']}\n")

with open(os.path.join(out, "scratches.jsonl"), "w") as msgs, \
        open(os.path.join(out, "defects.txt"), "w") as counts, \
        open(os.path.join(out, "images.txt"), "w") as images:
    for s in truth["scratches"]:
        b64 = base64.b64encode(open(os.path.join(data, s["file"]), "rb").read()).decode()
        msgs.write(json.dumps({"image": b64}) + "\n")
        counts.write(f"{s['count']}\n")
        images.write(b64 + "\n")
