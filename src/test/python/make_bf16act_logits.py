#!/usr/bin/env python3
"""Reference logits for the opt-in bf16 activations (aya --activations bf16) on the bf16 model fixtures.

Run: ~/.venvs/ref/bin/python src/test/python/make_bf16act_logits.py   (after make_model_fixtures.py)
Writes src/test/resources/model/<name>/logits_bf16act.npy: Hugging Face transformers in float32 with eager attention,
like logits.npy, except that the input of every nn.Linear (q/k/v/o, gate/up/down and lm_head) is rounded to bf16
(round to nearest even) first. That is what the engine does when it feeds the whole sequence as one prefill.
"""
import json
import os

import numpy as np
import torch
from transformers import Cohere2ForCausalLM

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "model")
FIXTURES = ["bf16-untied-sharded", "hd128-oldconfig"]  # the fixtures whose weights are bf16


def round_input_to_bf16(module, args):
    return (args[0].to(torch.bfloat16).to(torch.float32),) + tuple(args[1:])


for name in FIXTURES:
    d = os.path.join(OUT, name)
    model = Cohere2ForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    for m in linears:
        m.register_forward_pre_hook(round_input_to_bf16)
    with open(os.path.join(d, "input_ids.json")) as f:
        ids = json.load(f)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().numpy()
    f32 = np.load(os.path.join(d, "logits.npy"))
    np.save(os.path.join(d, "logits_bf16act.npy"), logits.astype(np.float32))
    print(f"{name}: {len(linears)} linears rounded, logits {logits.shape}, max|logit| {np.abs(logits).max():.3f}, "
          f"max|bf16act - f32| {np.abs(logits - f32).max():.3e}")
