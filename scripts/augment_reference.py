"""Renders, with the reference libraries, the augmentations that sweep's `data/augment.rs`
test checks its own against (`augment_reference.json` in `crates/model/tests/fixtures/`).

One 16×16 RGB test image, and for a few of sweep's `Transform`s (rotation, shift, zoom, their
combination, a mirrored one), the image transformed:

- fill "nearest": Keras's `apply_affine_transform` (what `ImageDataGenerator` runs; scipy's
  `affine_transform`, bilinear, `fill_mode="nearest"`), then `np.flip` for a mirrored one, as
  `ImageDataGenerator` flips after the affine transform;
- fill "constant": torchvision's `affine` (bilinear), then `hflip`. With `fill=None` it is
  `grid_sample`'s zero padding alone; with `fill=0` torchvision also multiplies each pixel by
  the fraction of its sample inside the image, so an edge pixel half outside is attenuated
  twice (a quirk of its fill blending that neither `grid_sample` nor Keras has).

Sweep's parameters map to the libraries' as `data/augment.rs`'s `Transform` documents:
Keras: theta = −degrees(angle), tx = −shift_x·size/scale, ty = −shift_y·size/scale,
zx = zy = 1/scale; torchvision: angle = degrees(angle), translate = (shift_x·size,
shift_y·size), scale = scale.

Usage (run by hand; CI only reads the JSON):
  KERAS_BACKEND=torch python scripts/augment_reference.py crates/model/tests/fixtures
Needs keras 3, scipy, torch and torchvision.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms.v2.functional as TF

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
from keras.src.legacy.preprocessing.image import apply_affine_transform  # noqa: E402

SIZE = 16

# (angle in radians, shift_x, shift_y, scale, flip): sweep's Transform fields.
TRANSFORMS = [
    (math.radians(25.0), 0.0, 0.0, 1.0, False),
    (0.0, 0.15, -0.1, 1.0, False),
    (0.0, 0.0, 0.0, 1.2, False),
    (0.0, 0.0, 0.0, 0.8, False),
    (math.radians(-12.0), 0.08, 0.12, 0.9, False),
    (math.radians(7.0), -0.05, 0.1, 1.1, True),
]


def image():
    """A smooth colour ramp with noise on it: every pixel differs from its neighbours."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    base = np.stack([x * 15, y * 15, (x + y) * 7], axis=-1)
    return np.clip(base + rng.integers(0, 40, base.shape), 0, 255).astype(np.uint8)


def keras_nearest(img, angle, shift_x, shift_y, scale, flip):
    chw = img.transpose(2, 0, 1).astype(np.float64)
    out = apply_affine_transform(
        chw, theta=-math.degrees(angle), tx=-shift_x * SIZE / scale,
        ty=-shift_y * SIZE / scale, zx=1 / scale, zy=1 / scale,
        row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", order=1)
    if flip:
        out = np.flip(out, axis=2)
    return out


def torchvision_constant(img, angle, shift_x, shift_y, scale, flip):
    chw = torch.from_numpy(img.transpose(2, 0, 1).astype(np.float64))
    out = TF.affine(chw, angle=math.degrees(angle), translate=[shift_x * SIZE, shift_y * SIZE],
                    scale=scale, shear=[0.0, 0.0],
                    interpolation=TF.InterpolationMode.BILINEAR, fill=None)
    if flip:
        out = TF.horizontal_flip(out)
    return out.numpy()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "crates/model/tests/fixtures"
    img = image()
    cases = []
    for fill, render in [("nearest", keras_nearest), ("constant", torchvision_constant)]:
        for angle, shift_x, shift_y, scale, flip in TRANSFORMS:
            out = render(img, angle, shift_x, shift_y, scale, flip)
            cases.append({
                "fill": fill, "angle": angle, "shift_x": shift_x, "shift_y": shift_y,
                "scale": scale, "flip": flip,
                # channel × height × width, in pixel levels (0–255)
                "expected": [round(float(v), 3) for v in out.ravel()],
            })
    fixture = {
        "reference": f"keras {keras.__version__} (scipy), torchvision {torchvision.__version__}",
        "size": SIZE,
        "image": [int(v) for v in img.ravel()],  # height × width × channel
        "cases": cases,
    }
    path = os.path.join(out_dir, "augment_reference.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes ({fixture['reference']})")


if __name__ == "__main__":
    main()
