"""Expected Q8_0 / Q4_0 blocks for aya.kernels.Quant, made by an independent implementation: the `gguf` package's
numpy port of ggml's reference quantizers (gguf.quants, the code llama.cpp's convert scripts use).

    ~/.venvs/ref/bin/pip install gguf   # from the local index
    ~/.venvs/ref/bin/python src/test/python/make_quant_fixtures.py

Writes src/test/resources/quant/blocks.json: rows of f32 inputs (as IEEE bit patterns, exact), and for each format the
quantized bytes (hex) and the dequantized values (bit patterns). Rows cover normal data, an all-zero block, ties of
magnitude with opposite signs, rounding halves, huge and tiny (fp16-subnormal scale) values."""
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

rng = np.random.default_rng(6)
rows = []
rows.append(rng.standard_normal(64))                                 # plain gaussian, two blocks
rows.append(rng.standard_normal(96) * 0.02)                          # weight-like scale
rows.append(np.concatenate([np.zeros(32), rng.uniform(-1, 1, 32)]))  # an all-zero block (scale 0)
tie = rng.uniform(-1, 1, 32); tie[5] = 0.75; tie[20] = -0.75          # equal magnitudes, first one (positive) wins
rows.append(tie)
tie2 = rng.uniform(-1, 1, 32); tie2[3] = -2.0; tie2[30] = 2.0         # equal magnitudes, first one (negative) wins
rows.append(tie2)
halves = np.arange(-16, 16) + 0.5                                    # x/d lands on .5 for Q8_0 when max is 127*k
halves = np.concatenate([halves / halves.max() * 127 * 0.01, [0.0] * 0]); halves[0] = -1.27
rows.append(halves)
rows.append(rng.standard_normal(32) * 3e4)                           # large
rows.append(rng.standard_normal(32) * 1e-6)                          # scale below fp16's normal range
rows.append(np.full(32, -0.3))                                       # constant negative
rows = [np.asarray(r, dtype=np.float32) for r in rows]

def bits(a):
    return [int(v) for v in np.asarray(a, dtype=np.float32).view(np.uint32)]

out = {"rows": []}
for r in rows:
    entry = {"input_bits": bits(r)}
    for name, t in (("q8_0", T.Q8_0), ("q4_0", T.Q4_0)):
        q = quantize(r.reshape(1, -1), t)
        entry[name] = {"hex": bytes(q.reshape(-1)).hex(), "dequantized_bits": bits(dequantize(q, t).reshape(-1))}
    out["rows"].append(entry)

path = pathlib.Path(__file__).resolve().parents[1] / "resources" / "quant" / "blocks.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print("wrote", path, len(rows), "rows")
