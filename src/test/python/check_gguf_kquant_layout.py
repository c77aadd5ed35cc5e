"""Checks that the k-quant blocks aya reads are the ones GGUF files hold: every Q4_K / Q6_K / Q5_0 tensor that
llama-quantize wrote into a file, dequantized by aya's C reference (aya_dequantize_kquant in libaya_kernels) and by
gguf-py, must be bit-identical. Not a unit test (it needs a GGUF file); docs/gguf-kernels.md has a run.

    llama-quantize [--tensor-type ffn_up=q5_0] model-bf16.gguf model-q4_k_m.gguf Q4_K_M
    ~/.venvs/ref/bin/python src/test/python/check_gguf_kquant_layout.py model-q4_k_m.gguf target/native/libaya_kernels.so
"""
import ctypes
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.quants import dequantize

lib = ctypes.CDLL(sys.argv[2])
aya_type = {T.Q5_0: 5, T.Q4_K: 6, T.Q6_K: 7}  # enum aya_weight_type
seen = {}
for tensor in GGUFReader(sys.argv[1]).tensors:
    if tensor.tensor_type not in aya_type:
        continue
    raw = np.ascontiguousarray(tensor.data).reshape(-1).view(np.uint8)
    want = dequantize(raw, tensor.tensor_type).astype(np.float32).reshape(-1)
    got = np.zeros(want.size, dtype=np.float32)
    lib.aya_dequantize_kquant(aya_type[tensor.tensor_type], raw.ctypes.data_as(ctypes.c_void_p),
                              ctypes.c_int32(want.size), got.ctypes.data_as(ctypes.c_void_p))
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), tensor.name
    seen[tensor.tensor_type.name] = seen.get(tensor.tensor_type.name, 0) + 1
print("bit-identical tensors:", seen)
