#!/usr/bin/python3
"""The C image decoder and preprocessing against Pillow and torchvision.

Generates the test images (test/reference/make_test_images.py) into
$MMSA_TMP, then for every decodable one:
  - `mmsa decode -o X.ppm` must equal Pillow exactly (max abs diff 0):
    Image.open + ImageOps.exif_transpose + convert("RGB"); PNGs with alpha
    or tRNS composited over white with the decoder's integer formula
    (c*a + 255*(255-a) + 127) // 255; 16-bit gray PNGs take the high byte
    (Pillow itself opens them in mode "I" and would clip).  Pillow uses the
    same system libjpeg-turbo and libpng, so exact equality is expected.
  - the large JPEG decoded with --target 256 (DCT scaling 1/8) must equal
    Pillow's Image.draft("RGB", (500, 375)) exactly.
  - `mmsa decode --preprocess CONFIG -o X.f32` must match torchvision
    Resize(resize) + CenterCrop(crop) + ToTensor + Normalize(mean, std):
      * identity normalisation (scale 1, mean 0, std 1): the resized and
        cropped uint8 values, exactly (tolerance 0);
      * torchvision ImageNet (RGB, 1/255, mean/std): max abs diff <= 1e-5
        (float rounding only; one pixel level is 1/255/0.229 = 0.017);
      * Caffe (BGR, scale 1, mean 103.939 116.779 123.68): <= 1e-4;
      * an odd crop offset (resize 300, crop 257) and resize 0 (straight
        to crop x crop): exact on uint8 values.
Hostile files must fail with the expected status and a message.
"""
import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import transforms
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, done, ROOT, CLI, TMP  # noqa: E402

torch.set_num_threads(1)
warnings.simplefilter("ignore")  # Pillow warns about the deliberately broken EXIF blocks

IMG = os.path.join(TMP, "image_decode_reference")
os.makedirs(IMG, exist_ok=True)

if not os.access(CLI, os.X_OK):
    ok(False, "mmsa CLI built at %s (run make)" % CLI)
    done()
# run a private copy: a concurrent `make` relinking build/mmsa must not break the run
shutil.copy2(CLI, os.path.join(IMG, "mmsa"))
CLI = os.path.join(IMG, "mmsa")
gen = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "test", "reference", "make_test_images.py"), IMG],
                     capture_output=True, text=True)
if not ok(gen.returncode == 0, "test images generated: %s" % gen.stderr.strip()[-200:]):
    done()
manifest = json.load(open(os.path.join(IMG, "manifest.json")))

CONFIGS = {
    "identity": {"resize": 256, "crop": 224, "channel_order": "RGB", "scale": 1.0,
                 "mean": [0, 0, 0], "std": [1, 1, 1]},
    "torchvision": {"resize": 256, "crop": 224, "channel_order": "RGB", "scale": 0.00392156862745098,
                    "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    "caffe": {"resize": 256, "crop": 224, "channel_order": "BGR", "scale": 1.0,
              "mean": [103.939, 116.779, 123.68], "std": [1, 1, 1]},
    "odd_crop": {"resize": 300, "crop": 257, "channel_order": "RGB", "scale": 1.0,
                 "mean": [0, 0, 0], "std": [1, 1, 1]},
    "squash": {"resize": 0, "crop": 224, "channel_order": "RGB", "scale": 1.0,
               "mean": [0, 0, 0], "std": [1, 1, 1]},
}
TOL = {"identity": 0.0, "torchvision": 1e-5, "caffe": 1e-4, "odd_crop": 0.0, "squash": 0.0}
for name, cfg in CONFIGS.items():
    with open(os.path.join(IMG, name + ".json"), "w") as f:
        json.dump(cfg, f)


def reference_rgb(path, info, draft=None):
    """Pillow's decode of path as (H,W,3) uint8, with the decoder's conventions."""
    im = Image.open(path)
    if draft is not None:
        im.draft("RGB", tuple(draft))
    im = ImageOps.exif_transpose(im)
    if info.get("gray16"):
        g = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
        return np.stack([g, g, g], axis=-1)
    if info.get("alpha"):
        a = np.asarray(im.convert("RGBA")).astype(np.uint32)
        rgb = (a[..., :3] * a[..., 3:] + 255 * (255 - a[..., 3:]) + 127) // 255
        return rgb.astype(np.uint8)
    return np.asarray(im.convert("RGB"))


def reference_tensor(rgb, cfg):
    """torchvision's Resize + CenterCrop + ToTensor + Normalize, with scale / BGR as configured."""
    im = Image.fromarray(rgb)
    if cfg["resize"] == 0:
        im = im.resize((cfg["crop"], cfg["crop"]), Image.BILINEAR)
    else:
        im = transforms.Resize(cfg["resize"], interpolation=transforms.InterpolationMode.BILINEAR)(im)
        im = transforms.CenterCrop(cfg["crop"])(im)
    if cfg["scale"] == 1.0 and cfg["mean"] == [0, 0, 0] and cfg["std"] == [1, 1, 1]:
        x = torch.from_numpy(np.asarray(im).astype(np.float32)).permute(2, 0, 1)
        return x.numpy()
    if cfg["channel_order"] == "RGB":
        x = transforms.ToTensor()(im)  # float(uint8) / 255
        x = transforms.Normalize(cfg["mean"], cfg["std"])(x)
        return x.numpy()
    a = np.asarray(im).astype(np.float32)[..., ::-1] * np.float32(cfg["scale"])
    a = (a - np.array(cfg["mean"], np.float32)) / np.array(cfg["std"], np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def read_ppm(path):
    data = open(path, "rb").read()
    parts = data.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    return np.frombuffer(parts[3], np.uint8).reshape(h, w, 3)


def run_cli(args):
    try:
        return subprocess.run([CLI, "decode"] + args, capture_output=True, text=True)
    except OSError as e:  # reported as a failed test, not a crash without a plan
        return subprocess.CompletedProcess(args, 127, "", "cannot run %s: %s" % (CLI, e))


STATUS_NAME = {"FORMAT": "format error", "LIMIT": "limit exceeded", "UNSUPPORTED": "unsupported",
               "INVALID": "invalid input"}

for name in sorted(manifest):
    info = manifest[name]
    path = os.path.join(IMG, name)
    if info["expect"] != "ok":
        r = run_cli([path])
        ok(r.returncode == 1 and STATUS_NAME[info["expect"]] in r.stderr and r.stdout == "",
           "%s: refused with %s: %s" % (name, info["expect"], r.stderr.strip().split(": ", 2)[-1]))
        continue

    # plain decode, full size
    out = os.path.join(IMG, name + ".ppm")
    r = run_cli(["-o", out, path])
    if not ok(r.returncode == 0, "%s: decodes (%s)" % (name, r.stderr.strip())):
        continue
    ref = reference_rgb(path, info)
    got = read_ppm(out)
    if ok(got.shape == ref.shape, "%s: size %s equals Pillow's %s" % (name, got.shape[:2], ref.shape[:2])):
        d = int(np.abs(got.astype(int) - ref.astype(int)).max())
        ok(d == 0, "%s: decoded RGB equals Pillow: max abs diff %d" % (name, d))

    target_args = []
    if "draft" in info:
        # full-size decode, heavy downscale (support ~12 pixels) in the resize
        tout = os.path.join(IMG, name + ".full.f32")
        r = run_cli(["--preprocess", os.path.join(IMG, "identity.json"), "-o", tout, path])
        if ok(r.returncode == 0, "%s [identity, full size]: preprocesses (%s)" % (name, r.stderr.strip())):
            got = np.fromfile(tout, np.float32)
            got = got.reshape(3, 224, 224) if got.size == 3 * 224 * 224 else np.full((3, 224, 224), np.inf, np.float32)
            d = float(np.abs(got - reference_tensor(ref, CONFIGS["identity"])).max())
            ok(d == 0, "%s [identity, full size]: resized+cropped uint8 equal torchvision: max abs diff %g"
               % (name, d))
        # DCT-scaled decode against Pillow's draft mode
        target_args = ["--target", str(info["target"])]
        r = run_cli(target_args + ["-o", out, path])
        ref = reference_rgb(path, info, draft=info["draft"])
        got = read_ppm(out) if r.returncode == 0 else np.zeros((0, 0, 3), np.uint8)
        if ok(got.shape == ref.shape, "%s: --target %d decodes at %s, Pillow draft at %s"
              % (name, info["target"], got.shape[:2], ref.shape[:2])):
            d = int(np.abs(got.astype(int) - ref.astype(int)).max())
            ok(d == 0, "%s: DCT-scaled RGB equals Pillow draft: max abs diff %d" % (name, d))

    # preprocessing: each configuration on the same reference RGB
    for cname, cfg in CONFIGS.items():
        if "draft" in info and cname not in ("torchvision", "identity"):
            continue
        tout = os.path.join(IMG, "%s.%s.f32" % (name, cname))
        r = run_cli(target_args + ["--preprocess", os.path.join(IMG, cname + ".json"), "-o", tout, path])
        if not ok(r.returncode == 0, "%s [%s]: preprocesses (%s)" % (name, cname, r.stderr.strip())):
            continue
        c = cfg["crop"]
        got = np.fromfile(tout, np.float32)
        want = reference_tensor(ref, cfg)
        d = float(np.abs(got.reshape(3, c, c) - want).max()) if got.size == 3 * c * c else float("inf")
        ok(d <= TOL[cname], "%s [%s]: tensor (3,%d,%d) vs torchvision: max abs diff %.3g <= %g"
           % (name, cname, c, c, d, TOL[cname]))

done()
