"""Reference distributions from Hugging Face transformers' logits processors, for aya.sampling.SamplerHfReferenceTest.

Only cases where transformers and llama.cpp mean the same thing are recorded: temperature 1 whenever a filter is
on (transformers applies temperature first, llama.cpp last), random float logits (no ties at the top-k edge), and
a repetition-penalty history shorter than repeat-last-n. Each case stores the logits, the settings and the final
probability of every token (0 for filtered ones).

Run: ~/.venvs/ref/bin/python src/test/python/make_sampling_fixtures.py
"""
import json
from pathlib import Path

import torch
from transformers.generation.logits_process import (
    LogitsProcessorList, MinPLogitsWarper, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
    TopKLogitsWarper, TopPLogitsWarper)

VOCAB = 1000


def case(name, seed, scale, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, penalty=1.0, history=()):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(1, VOCAB, generator=g) * scale).float()
    procs = LogitsProcessorList()
    if penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(penalty))
    if temperature != 1.0:
        procs.append(TemperatureLogitsWarper(temperature))
    if top_k > 0:
        procs.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        procs.append(TopPLogitsWarper(top_p))
    if min_p > 0.0:
        procs.append(MinPLogitsWarper(min_p))
    ids = torch.tensor([list(history) or [0]], dtype=torch.long)
    scores = procs(ids if history else ids[:, :0], logits.clone())
    probs = torch.softmax(scores.double(), dim=-1)[0]
    return {"name": name, "temperature": temperature, "top_k": top_k, "top_p": top_p, "min_p": min_p,
            "repeat_penalty": penalty, "history": list(history),
            "logits": [float(x) for x in logits[0]], "probs": [float(p) for p in probs]}


def main():
    cases = [
        case("top-k 40", 1, 2.0, top_k=40),
        case("top-p 0.9", 2, 3.0, top_p=0.9),
        case("top-p 0.5 peaked", 3, 4.5, top_p=0.5),
        case("min-p 0.05", 4, 2.5, min_p=0.05),
        case("top-k 50, top-p 0.8, min-p 0.1", 5, 3.0, top_k=50, top_p=0.8, min_p=0.1),
        case("temperature 0.7", 6, 2.0, temperature=0.7),
        case("temperature 1.8", 7, 2.0, temperature=1.8),
        case("repeat penalty 1.3", 8, 2.0, penalty=1.3, history=(5, 17, 5, 999, 3, 420)),
    ]
    out = Path(__file__).resolve().parents[1] / "resources" / "sampling" / "hf_logits_processors.json"
    out.write_text(json.dumps({"transformers_processors": "TopK/TopP/MinP/Temperature/RepetitionPenalty",
                               "vocab": VOCAB, "cases": cases}) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
