#!/usr/bin/env python3
"""Makes the GGUF test fixtures with llama.cpp's own tools, and transformers references for them.

Run (as it was run for the committed files; llama.cpp at de3ff81, built with cmake into build/):
    ~/.venvs/ref/bin/python src/test/python/make_gguf_fixtures.py /work/scratch/llama.cpp [scratch-dir]

Writes src/test/resources/gguf/:
  tiny-hf/          (+ greedy.json: transformers' greedy continuation) a tiny random Tiny-Aya-structured HF checkpoint (bf16, hidden 64, 4 layers: 3 sliding + 1 global,
                    tied head, vocab 2048 with the Tiny-Aya-structured tokenizer of src/test/resources/tokenizer/aya,
                    which defines 2014 ids) and its transformers logits (logits.npy)
  tiny-bf16.gguf    convert_hf_to_gguf.py --outtype bf16 of tiny-hf (the tokenizer's pre-tokenizer is set to
                    'tiny_aya': the converter recognises Tiny Aya by a hash of the real tokenizer only)
  tiny-q8_0.gguf    llama-quantize tiny-bf16.gguf Q8_0
  tiny-q4_0.gguf    llama-quantize tiny-bf16.gguf Q4_0 (token_embd becomes Q8_0: llama.cpp keeps the tied head at
                    8 bits when its rows are not a multiple of 256)
  k256-q4_k_m.gguf  llama-quantize Q4_K_M of a second random model whose rows are multiples of 256 (hidden 256,
                    intermediate 256, 4 layers), so Q4_K and Q6_K are really used; its HF folder stays in scratch
  <file>.logits.npy transformers (float32, eager) on the weights each quantized file really holds (dequantized with
                    gguf-py's gguf.quants), at every position of input_ids.json
  input_ids.json    the prompt used for every logits file
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from transformers import Cohere2Config, Cohere2ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "..", "resources")
OUT = os.path.join(RES, "gguf")
TOKENIZER_DIR = os.path.join(RES, "tokenizer", "aya")
PROMPT = "Hello world! ¿Qué tal? 12345 apples cost $3.50 — नमस्ते"


def randomize(model, seed):
    """Weights with spread (the default init gives near-uniform logits); same recipe as make_model_fixtures.py."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p.shape[1] ** 0.5))


def make_hf(out, seed, hidden, inter, layers, heads, kv_heads):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    config = Cohere2Config(vocab_size=2048, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                           num_attention_heads=heads, num_key_value_heads=kv_heads, sliding_window=8,
                           layer_types=["sliding_attention" if (i + 1) % 4 else "full_attention" for i in range(layers)],
                           logit_scale=0.5, tie_word_embeddings=True, max_position_embeddings=256,
                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                           bos_token_id=2, eos_token_id=3, pad_token_id=0)
    torch.manual_seed(seed)
    model = Cohere2ForCausalLM(config)
    randomize(model, seed)
    model.to(torch.bfloat16).save_pretrained(out)
    # llama.cpp's converter reads rotary_pct (Cohere's older config field); transformers ignores it
    with open(os.path.join(out, "config.json")) as f:
        c = json.load(f)
    c["rotary_pct"] = 1.0
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOKENIZER_DIR, name), os.path.join(out, name))
    gen = os.path.join(out, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)


def convert(llama, hf_dir, outfile, outtype):
    """convert_hf_to_gguf.py, run in a child with the pre-tokenizer name forced (the fixture tokenizer's hash is unknown)."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {llama!r})\n"
        f"sys.path.insert(1, {os.path.join(llama, 'gguf-py')!r})\n"
        "import conversion.base as base\n"
        "base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'tiny_aya'\n"
        "import convert_hf_to_gguf\n"
        f"sys.argv = ['convert_hf_to_gguf.py', {hf_dir!r}, '--outfile', {outfile!r}, '--outtype', {outtype!r}]\n"
        "convert_hf_to_gguf.main()\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=llama)


def quantize(llama, src, dst, qtype):
    subprocess.run([os.path.join(llama, "build", "bin", "llama-quantize"), src, dst, qtype], check=True,
                   stdout=subprocess.DEVNULL)


def dequantized_state_dict(path):
    """The weights the GGUF really holds, as float32 tensors under HF names."""
    sys_gguf = __import__("gguf")
    reader = sys_gguf.GGUFReader(path)
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}
    per_layer = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                 "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj",
                 "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    state, types = {}, {}
    for t in reader.tensors:
        if t.name in names:
            hf = names[t.name]
        else:
            _, layer, part, _ = t.name.split(".")
            hf = f"model.layers.{layer}.{per_layer[part]}.weight"
        shape = [int(d) for d in reversed(t.shape)]  # GGUF dims are innermost first
        w = sys_gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        state[hf] = torch.from_numpy(w.copy())
        types[t.name] = t.tensor_type.name
    return state, types


def reference_logits(hf_dir, state, ids):
    config = Cohere2Config.from_pretrained(hf_dir)
    config._attn_implementation = "eager"
    model = Cohere2ForCausalLM(config).to(torch.float32).eval()
    if state is None:
        model = Cohere2ForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    else:
        state = dict(state)
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and all("lm_head" in m for m in missing), (missing, unexpected)
        model.tie_weights()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def write_greedy(hf_dir, ids, new_tokens=12):
    """transformers' greedy continuation of the prompt (no end token stops it: eos is set to none)."""
    model = Cohere2ForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False, eos_token_id=None,
                             pad_token_id=0)
    with open(os.path.join(hf_dir, "greedy.json"), "w") as f:
        json.dump({"prompt": ids, "continuation": out[0, len(ids):].tolist()}, f)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make_gguf_fixtures.py LLAMA_CPP_DIR [SCRATCH_DIR]")
    llama = os.path.abspath(sys.argv[1])
    scratch = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "/tmp/aya-gguf-fixtures")
    os.makedirs(scratch, exist_ok=True)
    os.makedirs(OUT, exist_ok=True)

    from tokenizers import Tokenizer
    ids = Tokenizer.from_file(os.path.join(TOKENIZER_DIR, "tokenizer.json")).encode(PROMPT).ids
    with open(os.path.join(OUT, "input_ids.json"), "w") as f:
        json.dump({"prompt": PROMPT, "ids": ids}, f)

    tiny = os.path.join(OUT, "tiny-hf")
    make_hf(tiny, seed=11, hidden=64, inter=128, layers=4, heads=4, kv_heads=2)
    np.save(os.path.join(tiny, "logits.npy"), reference_logits(tiny, None, ids))
    write_greedy(tiny, ids)
    bf16 = os.path.join(OUT, "tiny-bf16.gguf")
    convert(llama, tiny, bf16, "bf16")
    for qtype, name in (("Q8_0", "tiny-q8_0.gguf"), ("Q4_0", "tiny-q4_0.gguf")):
        quantize(llama, bf16, os.path.join(OUT, name), qtype)

    k256 = os.path.join(scratch, "k256-hf")
    make_hf(k256, seed=12, hidden=256, inter=256, layers=4, heads=4, kv_heads=2)
    k256_bf16 = os.path.join(scratch, "k256-bf16.gguf")
    convert(llama, k256, k256_bf16, "bf16")
    quantize(llama, k256_bf16, os.path.join(OUT, "k256-q4_k_m.gguf"), "Q4_K_M")
    shutil.copy(os.path.join(k256, "config.json"), os.path.join(OUT, "k256-config.json"))

    for name, hf_dir in (("tiny-q8_0.gguf", tiny), ("tiny-q4_0.gguf", tiny), ("k256-q4_k_m.gguf", k256)):
        path = os.path.join(OUT, name)
        state, types = dequantized_state_dict(path)
        np.save(path + ".logits.npy", reference_logits(hf_dir, state, ids))
        print(name, os.path.getsize(path), "bytes;", sorted(set(types.values())))


if __name__ == "__main__":
    main()
