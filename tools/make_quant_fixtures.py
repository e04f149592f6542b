#!/usr/bin/env python3
"""Writes the dequantization fixtures of Tests/KernelsTests/Fixtures.

For each weight type, a few rows of random data are quantized into GGUF's block layout and dequantized by the `gguf`
Python package (the reference), and two files are written:

    <type>.weights      the raw blocks, rows back to back (ROWS rows of COLUMNS values)
    <type>.dequantized  gguf's dequantization of them, little-endian float32

gguf-py quantizes Q5_0 and BF16 itself; it only dequantizes the K-quants, so those are quantized here by a plain
version of ggml's reference quantizers (per-sub-block min/max instead of ggml's error search; the layout is what
matters). Every row is checked to dequantize close to its input, so a packing mistake here cannot go unnoticed.

Usage: python3 tools/make_quant_fixtures.py   (needs numpy and gguf; deterministic, re-running gives the same files)
"""

import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

ROWS, COLUMNS = 4, 512
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "KernelsTests", "Fixtures")


def f16_bytes(v: float) -> bytes:
    return np.float16(v).tobytes()


def pack_scales_k4(ls: np.ndarray, lm: np.ndarray) -> bytes:
    """ggml's 12-byte packing of eight 6-bit scales and eight 6-bit mins (quantize_row_q4_K_ref)."""
    s = [0] * 12
    for j in range(8):
        if j < 4:
            s[j] = int(ls[j])
            s[j + 4] = int(lm[j])
        else:
            s[j + 4] = (int(ls[j]) & 0xF) | ((int(lm[j]) & 0xF) << 4)
            s[j - 4] |= (int(ls[j]) >> 4) << 6
            s[j] |= (int(lm[j]) >> 4) << 6
    return bytes(s)


def k4_levels(x: np.ndarray, nmax: int):
    """Scales, mins and levels 0...nmax for one super-block of 256 values in 8 sub-blocks of 32 (Q4_K, Q5_K)."""
    sub = x.reshape(8, 32)
    lo = np.minimum(sub.min(axis=1), 0.0)
    scales = (sub.max(axis=1) - lo) / nmax
    mins = -lo
    inv_scale = 63.0 / scales.max() if scales.max() > 0 else 0.0
    inv_min = 63.0 / mins.max() if mins.max() > 0 else 0.0
    ls = np.minimum(63, np.rint(inv_scale * scales)).astype(np.int64)
    lm = np.minimum(63, np.rint(inv_min * mins)).astype(np.int64)
    d = np.float16(scales.max() / 63.0)
    dmin = np.float16(mins.max() / 63.0)
    levels = np.zeros((8, 32), dtype=np.int64)
    for j in range(8):
        dd = np.float32(d) * np.float32(ls[j])
        if dd == 0:
            continue
        dm = np.float32(dmin) * np.float32(lm[j])
        levels[j] = np.clip(np.rint((sub[j] + dm) / dd), 0, nmax)
    return d, dmin, ls, lm, levels.reshape(256)


def quantize_q4_k(x: np.ndarray) -> bytes:
    out = b""
    for sb in x.reshape(-1, 256):
        d, dmin, ls, lm, levels = k4_levels(sb, 15)
        qs = bytearray(128)
        for j in range(0, 256, 64):
            for l in range(32):
                qs[j // 2 + l] = levels[j + l] | (levels[j + l + 32] << 4)
        out += f16_bytes(d) + f16_bytes(dmin) + pack_scales_k4(ls, lm) + bytes(qs)
    return out


def quantize_q5_k(x: np.ndarray) -> bytes:
    out = b""
    for sb in x.reshape(-1, 256):
        d, dmin, ls, lm, levels = k4_levels(sb, 31)
        qh = bytearray(32)
        ql = bytearray(128)
        m1, m2 = 1, 2
        for n in range(0, 256, 64):
            for j in range(32):
                l1, l2 = int(levels[n + j]), int(levels[n + j + 32])
                if l1 > 15:
                    l1 -= 16
                    qh[j] |= m1
                if l2 > 15:
                    l2 -= 16
                    qh[j] |= m2
                ql[n // 2 + j] = l1 | (l2 << 4)
            m1 <<= 2
            m2 <<= 2
        out += f16_bytes(d) + f16_bytes(dmin) + pack_scales_k4(ls, lm) + bytes(qh) + bytes(ql)
    return out


def quantize_q6_k(x: np.ndarray) -> bytes:
    out = b""
    for sb in x.reshape(-1, 256):
        sub = sb.reshape(16, 16)
        peaks = np.take_along_axis(sub, np.abs(sub).argmax(axis=1)[:, None], axis=1)[:, 0]
        scales = peaks / -32.0
        max_scale = scales[np.abs(scales).argmax()]
        iscale = -128.0 / max_scale if max_scale != 0 else 0.0
        sc = np.clip(np.rint(iscale * scales), -128, 127).astype(np.int64)
        d = np.float16(1.0 / iscale if iscale != 0 else 0.0)
        levels = np.full((16, 16), 32, dtype=np.int64)
        for j in range(16):
            dd = np.float32(d) * np.float32(sc[j])
            if dd != 0:
                levels[j] = np.clip(np.rint(sub[j] / dd), -32, 31) + 32
        L = levels.reshape(256)
        ql = bytearray(128)
        qh = bytearray(64)
        for half in range(2):
            j, o, h = 128 * half, 64 * half, 32 * half
            for l in range(32):
                q1, q2, q3, q4 = L[j + l], L[j + l + 32], L[j + l + 64], L[j + l + 96]
                ql[o + l] = (q1 & 0xF) | ((q3 & 0xF) << 4)
                ql[o + l + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4)
                qh[h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
        out += bytes(ql) + bytes(qh) + sc.astype(np.int8).tobytes() + f16_bytes(d)
    return out


def gguf_quantize(qtype):
    return lambda x: quants.quantize(x.reshape(1, -1), qtype).tobytes()


# name, ggml type, quantizer, largest allowed |dequantized − input| relative to the row's largest |input|
TYPES = [
    ("q5_0", T.Q5_0, gguf_quantize(T.Q5_0), 0.04),
    ("q4_K", T.Q4_K, quantize_q4_k, 0.10),
    ("q5_K", T.Q5_K, quantize_q5_k, 0.05),
    ("q6_K", T.Q6_K, quantize_q6_k, 0.03),
    ("bf16", T.BF16, gguf_quantize(T.BF16), 0.01),
]


def main() -> int:
    rng = np.random.default_rng(20240611)
    os.makedirs(OUT, exist_ok=True)
    for name, qtype, quantize, tolerance in TYPES:
        # normal values whose magnitude changes from one 32-value group to the next, so scales cover their range
        x = rng.standard_normal((ROWS, COLUMNS)).astype(np.float32)
        x *= np.exp(rng.uniform(-2.0, 2.0, (ROWS, COLUMNS // 32, 1))).repeat(32, axis=2).reshape(ROWS, COLUMNS).astype(np.float32)
        raw = b"".join(quantize(row) for row in x)
        per_row = len(raw) // ROWS
        expected = quants.dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(ROWS, per_row), qtype).astype("<f4")
        assert expected.shape == (ROWS, COLUMNS), (name, expected.shape)
        worst = float((np.abs(expected - x).max(axis=1) / np.abs(x).max(axis=1)).max())
        assert worst <= tolerance, f"{name}: dequantized rows are off by {worst:.3f} of their range"
        with open(os.path.join(OUT, f"{name}.weights"), "wb") as f:
            f.write(raw)
        with open(os.path.join(OUT, f"{name}.dequantized"), "wb") as f:
            f.write(expected.tobytes())
        print(f"{name}: {ROWS}×{COLUMNS}, {per_row} bytes a row, worst error {worst:.4f} of the row's range")
    return 0


if __name__ == "__main__":
    sys.exit(main())
