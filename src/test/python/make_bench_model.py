#!/usr/bin/env python3
"""Makes a random checkpoint with Tiny Aya's real widths (hidden 2048, 16/4 heads, head_dim 128, intermediate 11008,
vocab 262144, window 4096, logit_scale 1.0, tied, bf16) but fewer layers, plus HF reference logits for a few ids.
For benchmarks and a full-width parity check; the output is large (~2.7 GB for 10 layers) and is NOT committed.

Run: ~/.venvs/ref/bin/python src/test/python/make_bench_model.py OUT_DIR [LAYERS]
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import Cohere2Config, Cohere2ForCausalLM

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 10
torch.manual_seed(0)
config = Cohere2Config(vocab_size=262144, hidden_size=2048, intermediate_size=11008, num_hidden_layers=layers,
                       num_attention_heads=16, num_key_value_heads=4, sliding_window=4096, logit_scale=1.0,
                       max_position_embeddings=8192, bos_token_id=2, eos_token_id=3, pad_token_id=0,
                       rope_parameters={"rope_type": "default", "rope_theta": 50000.0})
with torch.device("meta"):
    model = Cohere2ForCausalLM(config)
model = model.to_empty(device="cpu").to(torch.bfloat16)
model.tie_weights()  # to_empty gives lm_head its own storage; Tiny Aya ships no lm_head.weight
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.dim() == 1:
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        elif "embed_tokens" in name:
            p.copy_(torch.randn(p.shape, generator=g))
        else:
            p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p.shape[1] ** 0.5))
model.save_pretrained(out, safe_serialization=True, max_shard_size="20GB")
del model
ids = [2, 1000, 52000, 7, 123456, 261000, 42, 99]
ref = Cohere2ForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
with torch.no_grad():
    logits = ref(torch.tensor([ids])).logits[0].numpy()
np.save(os.path.join(out, "logits.npy"), logits.astype(np.float32))
with open(os.path.join(out, "input_ids.json"), "w") as f:
    json.dump(ids, f)
print("wrote", out, "max|logit|", float(np.abs(logits).max()))
