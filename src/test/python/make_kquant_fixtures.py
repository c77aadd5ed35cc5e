"""Reference Q5_0 / Q4_K / Q6_K rows for the k-quant kernels (native/src/*/kquant_*.c, aya.kernels.KQuant), made by
independent implementations:
  - dequantized values: the `gguf` package's numpy dequantizers (gguf.quants, used by llama.cpp's scripts);
  - real rows: llama.cpp's own quantizer (ggml_quantize_chunk in libggml-base.so, the code llama-quantize runs), so the
    layout the kernels read is the one GGUF files hold;
  - dot products: llama.cpp's CPU vec_dot for the type (ggml_get_type_traits_cpu in libggml-cpu.so), which quantizes the
    activations to Q8_0 (Q5_0) or Q8_K (Q4_K, Q6_K) first, exactly the numerics the kernels follow.

    ~/.venvs/ref/bin/python src/test/python/make_kquant_fixtures.py [/path/to/llama.cpp/build/bin]

Writes src/test/resources/quant/kquant.bin, a list of little-endian records (read by native/tests/test_kquant.c and
aya.kernels.KQuantTest):
    u32 ggml type, u32 n (values in the row), u32 tokens,
    the row's blocks (n / block * block bytes), n f32 dequantized values (gguf.quants),
    tokens * n f32 activations, tokens f32 llama.cpp dot products (row . activations of token t).
Rows: real data quantized by llama.cpp (gaussian, weight-like, with outliers), and crafted blocks with edge values
(scales 0, largest/smallest nibbles, negative scales, fp16 extremes and subnormals, all-equal bytes; never NaN/inf)."""
import ctypes
import pathlib
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

bin_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/work/scratch/llama.cpp/build/bin")
base = ctypes.CDLL(str(bin_dir / "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
cpu = ctypes.CDLL(str(bin_dir / "libggml-cpu.so"))
cpu.ggml_cpu_init()

base.ggml_quantize_chunk.restype = ctypes.c_size_t
base.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_void_p]

FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
VEC_DOT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                           ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class TraitsCpu(ctypes.Structure):
    _fields_ = [("from_float", ctypes.c_void_p), ("vec_dot", ctypes.c_void_p), ("vec_dot_type", ctypes.c_int),
                ("nrows", ctypes.c_int64)]


cpu.ggml_get_type_traits_cpu.restype = ctypes.POINTER(TraitsCpu)
cpu.ggml_get_type_traits_cpu.argtypes = [ctypes.c_int]

LAYOUT = {T.Q5_0: (32, 22), T.Q4_K: (256, 144), T.Q6_K: (256, 210), T.Q8_0: (32, 34), T.Q8_K: (256, 292)}


def llama_quantize(t, row):
    row = np.ascontiguousarray(row, dtype=np.float32)
    block, size = LAYOUT[t]
    out = np.zeros(len(row) // block * size, dtype=np.uint8)
    base.ggml_quantize_chunk(int(t), row.ctypes.data, out.ctypes.data, 0, 1, len(row), None)
    return out


def llama_dot(t, blocks, x):
    """llama.cpp's vec_dot of one quantized row with f32 activations (quantized by its from_float first)."""
    traits = cpu.ggml_get_type_traits_cpu(int(t)).contents
    act_type = T(traits.vec_dot_type)
    act_block, act_size = LAYOUT[act_type]
    acts = np.zeros(len(x) // act_block * act_size + 64, dtype=np.uint8)
    x = np.ascontiguousarray(x, dtype=np.float32)
    act_traits = cpu.ggml_get_type_traits_cpu(int(act_type)).contents
    FROM_FLOAT(act_traits.from_float)(x.ctypes.data, acts.ctypes.data, len(x))
    s = np.zeros(1, dtype=np.float32)
    VEC_DOT(traits.vec_dot)(len(x), s.ctypes.data, 0, blocks.ctypes.data, 0, acts.ctypes.data, 0, 1)
    return s[0]


rng = np.random.default_rng(12)


def f16_bytes(v):
    return np.array([v], dtype=np.uint16).view(np.uint8)


def crafted(t, n):
    """Random blocks with edge values written into them (the kernels must read any bytes a file can hold)."""
    block, size = LAYOUT[t]
    raw = rng.integers(0, 256, size=(n // block, size), dtype=np.uint8)
    # fp16 scales: ordinary, zero, negative, largest finite (0x7bff, -0x7bff), smallest subnormal, a tiny normal
    scales = [0x2e66, 0x0000, 0xae66, 0x7bff, 0xfbff, 0x0001, 0x0400, 0x3c00, 0x8000]
    for i in range(raw.shape[0]):
        d = scales[i % len(scales)] if i % 2 == 0 else int(rng.integers(0x1c00, 0x3000)) | (int(rng.integers(0, 2)) << 15)
        if t == T.Q5_0:
            raw[i, 0:2] = f16_bytes(d)
            if i % 5 == 1: raw[i, 2:] = 0x00        # every value -16
            if i % 5 == 2: raw[i, 2:] = 0xFF        # every value +15
            if i % 5 == 3: raw[i, 2:6] = 0x00       # no 5th bits, random nibbles
        elif t == T.Q4_K:
            raw[i, 0:2] = f16_bytes(d)
            raw[i, 2:4] = f16_bytes(scales[(i + 3) % len(scales)])  # dmin: zero, negative, extreme too
            if i % 4 == 1: raw[i, 4:16] = 0xFF      # every scale and min 63
            if i % 4 == 2: raw[i, 4:16] = 0x00      # every scale and min 0
            if i % 3 == 1: raw[i, 16:] = 0xFF       # nibbles 15
            if i % 3 == 2: raw[i, 16:] = 0x00       # nibbles 0
        else:  # Q6_K: ql[128] qh[64] scales[16] d
            raw[i, 208:210] = f16_bytes(d)
            if i % 4 == 1: raw[i, 192:208] = np.array([-128, 127] * 8, dtype=np.int8).view(np.uint8)
            if i % 4 == 2: raw[i, 192:208] = 0
            if i % 3 == 1: raw[i, 0:192] = 0xFF     # every value +31
            if i % 3 == 2: raw[i, 0:192] = 0x00     # every value -32
    return raw.reshape(-1)


records = []
for t in (T.Q5_0, T.Q4_K, T.Q6_K):
    rows = []
    for n in (256, 512, 2048):
        rows.append(("real", llama_quantize(t, rng.standard_normal(n) * 0.02)))
    outliers = rng.standard_normal(1024).astype(np.float32) * 0.05
    outliers[rng.integers(0, 1024, 8)] *= 60
    rows.append(("real", llama_quantize(t, outliers)))
    rows.append(("real", llama_quantize(t, np.full(512, -0.3, dtype=np.float32))))
    for n in (256, 2304):
        rows.append(("crafted", crafted(t, n)))
    for kind, blocks in rows:
        block, size = LAYOUT[t]
        n = len(blocks) // size * block
        values = dequantize(blocks, t).astype(np.float32).reshape(-1)
        assert np.all(np.isfinite(values)), (t, kind)
        x = [rng.standard_normal(n).astype(np.float32), rng.uniform(-3, 3, n).astype(np.float32)]
        x[1][: min(n, 300)] = 0.0  # a zero Q8_K / Q8_0 activation block
        dots = [llama_dot(t, blocks, xt) for xt in x]
        records.append(struct.pack("<III", int(t), n, len(x)) + blocks.tobytes() + values.tobytes()
                       + b"".join(xt.tobytes() for xt in x) + np.array(dots, dtype=np.float32).tobytes())

path = pathlib.Path(__file__).resolve().parents[1] / "resources" / "quant" / "kquant.bin"
path.write_bytes(b"".join(records))
print("wrote", path, len(records), "records,", path.stat().st_size, "bytes")
