#!/usr/bin/python3
"""Writes the image decoder's test files into a directory.

usage: make_test_images.py OUTDIR

Good files (JPEG and PNG variants, made with Pillow and numpy, or written
by hand where Pillow cannot: 16-bit RGB and interlaced PNG) and hostile
files (empty, truncated, corrupted, headers claiming 100000x100000 pixels,
other formats, non-image bytes).  OUTDIR/manifest.json lists every file
with what the decoder must do with it:

  {"name": {"expect": "ok" | "FORMAT" | "LIMIT" | "UNSUPPORTED" | "INVALID",
            "alpha": bool,         # PNG with alpha / tRNS: composite on white
            "gray16": bool,        # 16-bit gray: reference takes the high byte
            "draft": [w, h]        # large JPEG: Pillow draft size (DCT scaling)
           }}

Everything is deterministic (fixed seeds) and takes about a second.
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

TARGET = 256  # short side the large JPEG is DCT-scaled for


def synthetic(w, h, seed):
    """A colourful test picture: gradients, stripes, a disc and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(x / 7.0) * np.cos(y / 11.0)
    disc = ((x - w * 0.6) ** 2 + (y - h * 0.4) ** 2) < (min(w, h) * 0.25) ** 2
    r[disc] = 250
    g[disc] = 30
    b[disc] = 60
    img = np.stack([r, g, b], axis=-1)
    img += rng.normal(0, 12, img.shape)
    img[:, : max(w // 10, 1)] = [255, 255, 255]  # a hard edge
    return np.clip(img, 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(arr, color_type, bit_depth, interlace=False, extra_chunks=()):
    """A PNG written by hand: arr is (H,W,C) uint8 or uint16 (big-endian written)."""
    h, w = arr.shape[:2]
    a = arr.reshape(h, w, -1)
    dtype = ">u2" if bit_depth == 16 else "u1"

    def scanlines(sub):
        out = bytearray()
        for row in sub:
            out += b"\x00" + row.astype(dtype).tobytes()  # filter type 0
        return bytes(out)

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = a[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += scanlines(sub)
    else:
        raw = scanlines(a)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    for kind, data in extra_chunks:
        out += png_chunk(kind, data)
    out += png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    return out


def exif_orientation_bytes(o, big_endian=False):
    """A minimal TIFF/EXIF block with IFD0 holding only Orientation = o."""
    e = ">" if big_endian else "<"
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, o, 0) + struct.pack(e + "I", 0)
    return head + ifd


def jpeg_with_app1(jpeg, tiff):
    """Inserts an APP1 Exif segment right after SOI."""
    payload = b"Exif\x00\x00" + tiff
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + seg + jpeg[2:]


def save(im, **kw):
    buf = io.BytesIO()
    im.save(buf, **kw)
    return buf.getvalue()


def jpeg_segments(data):
    """(marker, offset of marker, length) of each segment up to SOS."""
    pos, segs = 2, []
    while pos + 4 <= len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segs.append((marker, pos, length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return segs


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    manifest = {}

    def put(name, data, expect="ok", **info):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        manifest[name] = dict(expect=expect, **info)

    rgb = Image.fromarray(synthetic(320, 240, 1))
    odd = Image.fromarray(synthetic(333, 251, 2))
    tall = Image.fromarray(synthetic(150, 210, 3))

    # ---- JPEG ----
    base = save(rgb, format="JPEG", quality=90)
    put("baseline.jpg", base)
    put("baseline_444.jpg", save(odd, format="JPEG", quality=92, subsampling=0))
    put("baseline_422.jpg", save(odd, format="JPEG", quality=85, subsampling=1))
    put("baseline_420_odd.jpg", save(odd, format="JPEG", quality=75, subsampling=2))
    put("progressive.jpg", save(rgb, format="JPEG", quality=88, progressive=True))
    put("progressive_tall.jpg", save(tall, format="JPEG", quality=80, progressive=True))
    put("gray.jpg", save(rgb.convert("L"), format="JPEG", quality=90))
    put("gray_progressive.jpg", save(odd.convert("L"), format="JPEG", quality=90, progressive=True))
    put("cmyk.jpg", save(odd.convert("CMYK"), format="JPEG", quality=90))
    for o in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = o
        put("exif_%d.jpg" % o, save(tall, format="JPEG", quality=90, exif=exif.tobytes()))
    tall_jpeg = save(tall, format="JPEG", quality=90)
    put("exif_6_bigendian.jpg", jpeg_with_app1(tall_jpeg, exif_orientation_bytes(6, big_endian=True)))
    # a broken EXIF block (IFD offset beyond the data): orientation ignored, image fine
    bad_tiff = b"II" + struct.pack("<HI", 42, 0xFFFFFFF0)
    put("exif_bad_offset.jpg", jpeg_with_app1(tall_jpeg, bad_tiff))
    # entry count claims more entries than there are bytes
    bad_tiff2 = b"II" + struct.pack("<HIH", 42, 8, 0xFFFF) + struct.pack("<HHIHH", 0x0100, 3, 1, 5, 0)
    put("exif_bad_count.jpg", jpeg_with_app1(tall_jpeg, bad_tiff2))
    big = Image.fromarray(synthetic(4000, 3000, 4))
    # libjpeg's smallest k/8 with both sides >= TARGET: 1/8 here (500x375);
    # Pillow's draft() can express 1/8 (scale = min(4000 // 500, 3000 // 375) = 8)
    put("large_4000x3000.jpg", save(big, format="JPEG", quality=85), draft=[500, 375], target=TARGET)

    # ---- PNG ----
    put("rgb.png", save(rgb, format="PNG"))
    put("palette.png", save(odd.convert("P", palette=Image.ADAPTIVE, colors=200), format="PNG"))
    pal = tall.convert("P", palette=Image.ADAPTIVE, colors=64)
    put("palette_trns.png", save(pal, format="PNG", transparency=bytes(range(0, 256, 4))[:64]), alpha=True)
    put("gray.png", save(rgb.convert("L"), format="PNG"))
    put("gray_1bit.png", save(tall.convert("1"), format="PNG"))
    gray = np.asarray(odd.convert("L"))
    put("gray_trns.png", save(Image.fromarray(gray), format="PNG", transparency=int(gray[0, 0])), alpha=True)
    g16 = (np.asarray(rgb.convert("L")).astype(np.uint16) * 257 + np.arange(240)[:, None].astype(np.uint16)) 
    put("gray16.png", png_bytes(g16, 0, 16), gray16=True)
    rgb16 = np.asarray(odd).astype(np.uint16) * 256 + np.random.default_rng(5).integers(0, 256, (251, 333, 3)).astype(np.uint16)
    put("rgb16.png", png_bytes(rgb16, 2, 16))
    alpha = np.linspace(0, 255, 333 * 251).reshape(251, 333).astype(np.uint8)
    rgba = np.concatenate([np.asarray(odd), alpha[..., None]], axis=-1)
    put("rgba.png", save(Image.fromarray(rgba, "RGBA"), format="PNG"), alpha=True)
    la = np.stack([gray, alpha], axis=-1)
    put("gray_alpha.png", save(Image.fromarray(la, "LA"), format="PNG"), alpha=True)
    put("rgb_trns.png", save(odd, format="PNG", transparency=tuple(int(v) for v in np.asarray(odd)[0, -1])), alpha=True)
    put("interlaced.png", png_bytes(np.asarray(odd), 2, 8, interlace=True))
    put("interlaced_rgba16.png", png_bytes(np.concatenate([rgb16, (alpha.astype(np.uint16) * 257)[..., None]], axis=-1), 6, 16, interlace=True), alpha=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    put("exif_6.png", save(tall, format="PNG", exif=exif.tobytes()))

    # ---- hostile ----
    put("empty.jpg", b"", expect="INVALID")
    put("truncated.jpg", base[: len(base) * 6 // 10], expect="FORMAT")
    put("truncated_header.jpg", base[:120], expect="FORMAT")
    prog = save(rgb, format="JPEG", quality=88, progressive=True)
    put("truncated_progressive.jpg", prog[: len(prog) // 2], expect="FORMAT")
    rgb_png = save(rgb, format="PNG")
    put("truncated.png", rgb_png[: len(rgb_png) // 2], expect="FORMAT")
    put("truncated_header.png", rgb_png[:20], expect="FORMAT")
    # corrupted entropy data: a stray marker (0xFF 0xC8, no RST) in the middle of the scan
    segs = jpeg_segments(base)
    sos = [s for s in segs if s[0] == 0xDA][0]
    scan_start = sos[1] + 2 + sos[2]
    mid = (scan_start + len(base)) // 2
    corrupt = bytearray(base)
    corrupt[mid : mid + 2] = b"\xff\xc8"
    put("bitflip_scan.jpg", bytes(corrupt), expect="FORMAT")
    # a flipped bit in SOF's sample precision (8 -> 9)
    sof = [s for s in segs if s[0] in (0xC0, 0xC2)][0]
    corrupt = bytearray(base)
    corrupt[sof[1] + 4] ^= 0x01
    put("bitflip_sof.jpg", bytes(corrupt), expect="FORMAT")
    # a flipped bit inside the IDAT data: the chunk's CRC no longer matches
    corrupt = bytearray(rgb_png)
    idat = rgb_png.index(b"IDAT")
    corrupt[idat + 4 + 40] ^= 0x10
    put("bitflip.png", bytes(corrupt), expect="FORMAT")
    # headers claiming 100000 x 100000 pixels
    huge = bytearray(base)
    huge[sof[1] + 5 : sof[1] + 9] = struct.pack(">HH", 50000, 50000)
    put("huge_50000.jpg", bytes(huge), expect="LIMIT")
    # JPEG sizes are 16-bit: 100000 does not fit, 65500 x 65500 is the largest claim
    huge[sof[1] + 5 : sof[1] + 9] = struct.pack(">HH", 65500, 65500)
    put("huge_65500.jpg", bytes(huge), expect="LIMIT")
    prog_sof = [s for s in jpeg_segments(prog) if s[0] == 0xC2][0]
    huge = bytearray(prog)
    huge[prog_sof[1] + 5 : prog_sof[1] + 9] = struct.pack(">HH", 65500, 65500)
    put("huge_progressive.jpg", bytes(huge), expect="LIMIT")
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    put("huge_100000.png", rgb_png[:8] + png_chunk(b"IHDR", ihdr) + rgb_png[33:], expect="LIMIT")
    ihdr = struct.pack(">IIBBBBB", 0x7FFFFFFF, 0x7FFFFFFF, 8, 6, 0, 0, 0)
    put("huge_max.png", rgb_png[:8] + png_chunk(b"IHDR", ihdr) + rgb_png[33:], expect="LIMIT")
    put("not_an_image.jpg", b"This is a text file, not a picture.\n" * 3, expect="UNSUPPORTED")
    put("image.gif", save(rgb, format="GIF"), expect="UNSUPPORTED")
    put("image.bmp", save(rgb, format="BMP"), expect="UNSUPPORTED")
    put("image.tiff", save(rgb, format="TIFF"), expect="UNSUPPORTED")
    put("image.webp", save(rgb, format="WEBP"), expect="UNSUPPORTED")
    put("image.heic", struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 32,
        expect="UNSUPPORTED")
    put("png_named.jpg", rgb_png)  # decoded by content, whatever the name

    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
