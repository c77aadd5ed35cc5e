"""Reference logits of an `aya init-random` checkpoint, computed by transformers.

InitRandomParityTest regenerates the same checkpoint (same flags and seed), checks its shards are byte-identical to
the ones this script read (sha256), then checks the engine's logits against these. It shows init-random writes a
checkpoint that transformers loads as Cohere2ForCausalLM, and that both agree on it.

Run from the repository root:
  ./aya init-random --output /tmp/ir --seed 11 --layers 5 --hidden 64 --intermediate 96 --heads 4 --kv-heads 2 \
      --head-dim 16 --vocab 300
  ~/.venvs/ref/bin/python src/test/python/make_init_random_fixture.py /tmp/ir
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import Cohere2ForCausalLM

model_dir = Path(sys.argv[1])
out = Path(__file__).resolve().parents[1] / "resources" / "init-random"
out.mkdir(parents=True, exist_ok=True)

model = Cohere2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32)  # bf16 weights, f32 compute
model.eval()
ids = [2, 17, 299, 5, 42, 42, 7, 150, 3, 0, 64, 128]
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0].float().numpy()
np.save(out / "logits.npy", logits.astype(np.float32))
shards = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(model_dir.glob("*.safetensors"))}
(out / "reference.json").write_text(json.dumps({"input_ids": ids, "sha256": shards}, indent=2) + "\n")
print(out, logits.shape, float(np.abs(logits).max()))
