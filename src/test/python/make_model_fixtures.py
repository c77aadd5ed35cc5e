#!/usr/bin/env python3
"""Makes tiny random Cohere2ForCausalLM checkpoints and Hugging Face reference outputs for the engine tests.

Run: ~/.venvs/ref/bin/python src/test/python/make_model_fixtures.py [NAME...]   (deterministic: fixed seeds; no NAME = all)
Writes src/test/resources/model/<name>/ with config.json, generation_config.json, safetensors (single or sharded),
input_ids.json, logits.npy (float32 [T, V], the HF logits at every input position) and greedy.json
(HF generate(do_sample=False) continuation). The reference runs in float32 with eager attention; a bf16
checkpoint is loaded with dtype=float32, so the reference is f32 activations over bf16-rounded weights.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from transformers import Cohere2Config, Cohere2ForCausalLM, GenerationConfig

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "model")

FIXTURES = [
    # fp32, tied head, logit_scale != 1, GQA 2, head_dim 18 (not a multiple of the vector width), window 8 < seq 40
    dict(name="f32-tied", dtype="float32", seed=1, vocab_size=320, hidden_size=72, intermediate_size=150,
         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, sliding_window=8,
         logit_scale=0.25, tie_word_embeddings=True, rope_theta=10000.0, layer_types=None, seq=40, new_tokens=12),
    # bf16, untied head, logit_scale == 1, irregular layer_types, GQA 3, sharded
    dict(name="bf16-untied-sharded", dtype="bfloat16", seed=5, vocab_size=300, hidden_size=96, intermediate_size=196,
         num_hidden_layers=5, num_attention_heads=6, num_key_value_heads=2, sliding_window=5,
         logit_scale=1.0, tie_word_embeddings=False, rope_theta=500.0,
         layer_types=["sliding_attention", "full_attention", "full_attention", "sliding_attention", "sliding_attention"],
         seq=33, new_tokens=10, max_shard_size="120KB"),
    # head_dim 128, bf16, config written the old way (sliding_window_pattern, top-level rope_theta, no logit_scale)
    dict(name="hd128-oldconfig", dtype="bfloat16", seed=3, vocab_size=256, hidden_size=256, intermediate_size=128,
         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, sliding_window=6,
         logit_scale=None, tie_word_embeddings=True, rope_theta=50000.0, layer_types=None, sliding_window_pattern=2,
         old_config=True, seq=20, new_tokens=8),
    # f16 weights, a global first layer, head_dim 20, GQA 2; generation_config's eos is a token greedy decoding reaches
    dict(name="f16-eos", dtype="float16", seed=4, vocab_size=200, hidden_size=40, intermediate_size=72,
         num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1, sliding_window=4,
         logit_scale=0.5, tie_word_embeddings=True, rope_theta=10000.0,
         layer_types=["full_attention", "sliding_attention", "sliding_attention"], seq=24, new_tokens=10, eos_hit=4),
    # head_dim set in config.json and != hidden_size / heads (64 / 4 = 16): q_proj [4 x 48, 64], o_proj [64, 192], GQA 2
    dict(name="headdim-wide", dtype="float32", seed=6, vocab_size=256, hidden_size=64, intermediate_size=96,
         num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=48, sliding_window=6,
         logit_scale=0.5, tie_word_embeddings=True, rope_theta=10000.0,
         layer_types=["sliding_attention", "full_attention", "sliding_attention"], seq=28, new_tokens=10),
]


def randomize(model, seed):
    """Weights with spread (the default init gives near-uniform logits and ambiguous greedy picks)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # LayerNorm weights
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p.shape[1] ** 0.5))


def make(spec):
    name = spec["name"]
    out = os.path.join(OUT, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    torch.manual_seed(spec["seed"])
    kwargs = dict(vocab_size=spec["vocab_size"], hidden_size=spec["hidden_size"],
                  intermediate_size=spec["intermediate_size"], num_hidden_layers=spec["num_hidden_layers"],
                  num_attention_heads=spec["num_attention_heads"], num_key_value_heads=spec["num_key_value_heads"],
                  sliding_window=spec["sliding_window"], tie_word_embeddings=spec["tie_word_embeddings"],
                  max_position_embeddings=128, bos_token_id=2, eos_token_id=3, pad_token_id=0,
                  rope_parameters={"rope_type": "default", "rope_theta": spec["rope_theta"]})
    if spec["logit_scale"] is not None:
        kwargs["logit_scale"] = spec["logit_scale"]
    if spec["layer_types"] is not None:
        kwargs["layer_types"] = spec["layer_types"]
    if "head_dim" in spec:
        kwargs["head_dim"] = spec["head_dim"]
    if "sliding_window_pattern" in spec:
        kwargs["sliding_window_pattern"] = spec["sliding_window_pattern"]
    config = Cohere2Config(**kwargs)
    model = Cohere2ForCausalLM(config).eval()
    randomize(model, spec["seed"])
    dtype = getattr(torch, spec["dtype"])
    model = model.to(dtype)
    model.generation_config = GenerationConfig(bos_token_id=2, eos_token_id=3, pad_token_id=0)
    save = dict(safe_serialization=True)
    if "max_shard_size" in spec:
        save["max_shard_size"] = spec["max_shard_size"]
    model.save_pretrained(out, **save)

    if spec.get("old_config"):
        # Rewrite config.json the way older Hub configs look; the reference below reloads it from disk.
        path = os.path.join(out, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg.pop("layer_types", None)
        cfg.pop("rope_parameters", None)
        cfg.pop("logit_scale", None)
        cfg.pop("head_dim", None)
        cfg.pop("tie_word_embeddings", None)
        cfg["rope_theta"] = spec["rope_theta"]
        cfg["sliding_window_pattern"] = spec["sliding_window_pattern"]
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)

    # Reference: reload from disk (checks our files parse the same way in HF), f32 activations, eager attention.
    ref = Cohere2ForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    if "head_dim" in spec:  # transformers must really use the field, not hidden_size / heads
        q_rows = ref.model.layers[0].self_attn.q_proj.weight.shape[0]
        assert q_rows == spec["num_attention_heads"] * spec["head_dim"] != spec["hidden_size"], q_rows
    if spec.get("old_config"):
        assert ref.config.layer_types == ["sliding_attention" if (i + 1) % spec["sliding_window_pattern"] else "full_attention"
                                          for i in range(spec["num_hidden_layers"])], ref.config.layer_types
        assert abs(ref.logit_scale - 0.0625) < 1e-12
    rng = np.random.default_rng(spec["seed"])
    ids = [2] + rng.integers(4, spec["vocab_size"], size=spec["seq"] - 1).tolist()
    eos = 3
    with torch.no_grad():
        logits = ref(torch.tensor([ids])).logits[0].float().numpy()
        if "eos_hit" in spec:
            # make the eos the token greedy decoding emits at step eos_hit, so generation must stop there
            free = ref.generate(torch.tensor([ids[:12]]), do_sample=False, max_new_tokens=spec["new_tokens"],
                                eos_token_id=None, pad_token_id=0)
            eos = int(free[0, 12 + spec["eos_hit"]])
            with open(os.path.join(out, "generation_config.json"), "w") as f:
                json.dump({"bos_token_id": 2, "eos_token_id": [eos], "pad_token_id": 0}, f)
        gen = ref.generate(torch.tensor([ids[:12]]), do_sample=False, max_new_tokens=spec["new_tokens"],
                           eos_token_id=eos, pad_token_id=0)
    greedy = gen[0, 12:].tolist()
    if eos in greedy:
        greedy = greedy[:greedy.index(eos) + 1]  # HF pads after eos; the continuation ends with the eos
        assert len(greedy) < spec["new_tokens"], "eos must stop generation early in this fixture"
    # Greedy picks must be clear: a near-tie would make an exact-ids test depend on rounding.
    with torch.no_grad():
        full = ref(torch.tensor([ids[:12] + greedy])).logits[0, 11:-1].float()
    top2 = torch.topk(full, 2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    assert margin > 1e-3 * float(full.abs().max()), f"{name}: greedy margin {margin} too small, change the seed"
    np.save(os.path.join(out, "logits.npy"), logits.astype(np.float32))
    with open(os.path.join(out, "input_ids.json"), "w") as f:
        json.dump(ids, f)
    with open(os.path.join(out, "greedy.json"), "w") as f:
        json.dump({"prompt": ids[:12], "max_new_tokens": spec["new_tokens"], "ids": greedy, "eos": eos,
                   "min_top2_margin": margin}, f)
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"{name}: {len(ids)} ids, logits {logits.shape}, max|logit| {np.abs(logits).max():.3f}, "
          f"greedy {greedy}, margin {margin:.4f}, {size / 1024:.0f} KiB, files {sorted(os.listdir(out))}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    names = sys.argv[1:]
    unknown = set(names) - {spec["name"] for spec in FIXTURES}
    if unknown:
        sys.exit(f"unknown fixture(s): {sorted(unknown)}")
    for spec in FIXTURES:
        if not names or spec["name"] in names:
            make(spec)
