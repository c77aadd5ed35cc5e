#!/usr/bin/env python3
"""Makes a tiny Cohere2 checkpoint WITH a tokenizer and a chat template, plus transformers reference outputs,
for the text-level generate/chat tests (aya.generation, GenerateCommand, ChatCommand).

Run: ~/.venvs/ref/bin/python src/test/python/make_chat_fixture.py   (deterministic: fixed seeds)
Writes src/test/resources/chat/tiny-chat/:
- tokenizer.json: a byte-level BPE trained here with HF `tokenizers` on a small multilingual corpus, Cohere's special
  tokens at Cohere's ids 0-7 (+ CHATBOT/SYSTEM/START_RESPONSE after them, <|END_RESPONSE|> last, as in Tiny Aya),
  a post-processor that prepends <BOS_TOKEN>; tokenizer_config.json and chat_template.jinja (a Cohere-style template
  written here: system/user/chatbot turns, replies wrapped in <|START_RESPONSE|>...<|END_RESPONSE|>).
- config.json, generation_config.json, model.safetensors: a random Cohere2ForCausalLM whose vocab_size is 24 rows
  larger than the tokenizer; those extra output-head rows are scaled up so that sampling them would win (tests that we
  never pick ids the tokenizer does not define; the reference suppresses them, as our sampler must).
- reference.json: for each case the prompt ids (apply_chat_template / tokenizer encode, as transformers does), the
  greedy continuation of transformers' generate (stopping on eos ids + END_OF_TURN + END_RESPONSE), its text
  (decode with skip_special_tokens=True), and for a two-turn chat the second turn made from the first reply.
"""
import json
import os
import shutil

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import Cohere2Config, Cohere2ForCausalLM, GenerationConfig, PreTrainedTokenizerFast

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "chat", "tiny-chat")

SPECIALS = ["<PAD>", "<MASK_TOKEN>", "<BOS_TOKEN>", "<EOS_TOKEN>", "<UNK>", "<|START_OF_TURN_TOKEN|>",
            "<|END_OF_TURN_TOKEN|>", "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>", "<|SYSTEM_TOKEN|>", "<|START_RESPONSE|>"]

# Cohere-style template, one line (no whitespace control questions between Jinja engines).
TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{ message['content'] }}<|END_OF_TURN_TOKEN|>"
    "{% elif message['role'] == 'user' %}<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{ message['content'] }}<|END_OF_TURN_TOKEN|>"
    "{% elif message['role'] == 'assistant' %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>{{ message['content'] }}<|END_RESPONSE|><|END_OF_TURN_TOKEN|>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>{% endif %}"
)

CORPUS = [
    "Hello world, how are you today? I am fine, thank you.",
    "Translate to French: good morning. Bonjour, comment ça va ? Très bien, merci.",
    "Grüße aus München! Die Straße ist schön.",
    "日本語のテキストです。東京は大きい都市です。",
    "Привет, как дела? Всё хорошо.",
    "नमस्ते, आप कैसे हैं?",
    "The quick brown fox jumps over the lazy dog 1234567890.",
    "¿Dónde está la biblioteca? Está aquí.",
    "مرحبا بالعالم",
    "Write a short poem about the sea. The sea is blue and deep and wide.",
] * 20

MODEL_EXTRA_ROWS = 24
MAX_NEW = 24


def make_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens(["<|END_RESPONSE|>"])
    bos = tok.token_to_id("<BOS_TOKEN>")
    tok.post_processor = processors.TemplateProcessing(single="<BOS_TOKEN> $A", pair="<BOS_TOKEN> $A <BOS_TOKEN> $B",
                                                       special_tokens=[("<BOS_TOKEN>", bos)])
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def randomize(model, seed, tok_vocab):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p.shape[1] ** 0.5))
        # rows the tokenizer does not define: big, so an unrestricted argmax would pick them
        model.lm_head.weight[tok_vocab:] *= 12.0
        # end tokens a bit likelier, so short greedy replies end on one (the stop tests need that)
        for end in (3, 6, tok_vocab - 1):
            model.lm_head.weight[end] *= 2.0


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)

    raw = make_tokenizer()
    tok_vocab = raw.get_vocab_size(with_added_tokens=True)
    end_response = raw.token_to_id("<|END_RESPONSE|>")
    assert end_response == tok_vocab - 1
    fast = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<BOS_TOKEN>", eos_token="<|END_OF_TURN_TOKEN|>",
                                   pad_token="<PAD>", unk_token="<UNK>")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(OUT)
    with open(os.path.join(OUT, "chat_template.jinja"), "w") as f:
        f.write(TEMPLATE)

    config = Cohere2Config(vocab_size=tok_vocab + MODEL_EXTRA_ROWS, hidden_size=64, intermediate_size=128,
                           num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, sliding_window=8,
                           tie_word_embeddings=False, max_position_embeddings=256, bos_token_id=2, eos_token_id=3,
                           pad_token_id=0, logit_scale=0.5,
                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    model = Cohere2ForCausalLM(config).eval()
    randomize(model, 11, tok_vocab)
    # Sampling defaults of the checkpoint (the tests pass --temperature 0 for the transformers comparisons).
    model.generation_config = GenerationConfig(bos_token_id=2, eos_token_id=[3], pad_token_id=0, do_sample=True,
                                               temperature=0.7, top_p=0.9)
    model.save_pretrained(OUT, safe_serialization=True)

    ref = Cohere2ForCausalLM.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()
    hf_tok = PreTrainedTokenizerFast.from_pretrained(OUT)
    assert hf_tok.chat_template == TEMPLATE
    eos = [3, raw.token_to_id("<|END_OF_TURN_TOKEN|>"), end_response]
    suppress = list(range(tok_vocab, config.vocab_size))

    def greedy(prompt_ids, strict=True):
        with torch.no_grad():
            first = ref(torch.tensor([prompt_ids])).logits[0, -1]
            assert int(first.argmax()) >= tok_vocab, "extra rows must win an unrestricted argmax"
            out = ref.generate(torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=MAX_NEW, eos_token_id=eos,
                               pad_token_id=0, suppress_tokens=suppress)
            new = out[0, len(prompt_ids):].tolist()
            logits = ref(out).logits[0, len(prompt_ids) - 1:-1, :tok_vocab].float()
        top2 = torch.topk(logits, 2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
        # Greedy picks must be clear: a near-tie would make an exact-ids test depend on rounding.
        if margin <= 1e-3 * float(logits.abs().max()):
            assert not strict, f"greedy margin {margin} too small, change the seed or the prompt"
            return None
        stopped = new[-1] in eos
        reply = new[:-1] if stopped else new
        return dict(prompt_ids=prompt_ids, ids=new, stopped_on_end_token=stopped,
                    text=hf_tok.decode(reply, skip_special_tokens=True), margin=margin)

    def chat_ids(messages):
        rendered = hf_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return hf_tok(rendered, add_special_tokens=False)["input_ids"], rendered

    def greedy_no_stop(prompt_ids, n):
        """Greedy for n tokens, ignoring every end token (as --ignore-eos), rows beyond the tokenizer suppressed."""
        ids = list(prompt_ids)
        margins = []
        with torch.no_grad():
            for _ in range(n):
                logits = ref(torch.tensor([ids])).logits[0, -1, :tok_vocab].float()
                top2 = torch.topk(logits, 2).values
                margins.append(float(top2[0] - top2[1]) / float(logits.abs().max()))
                ids.append(int(logits.argmax()))
        new = ids[len(prompt_ids):]
        assert min(margins) > 1e-3, f"greedy margin {min(margins)} too small"
        return dict(prompt_ids=list(prompt_ids), ids=new, stopped_on_end_token=False,
                    text=hf_tok.decode(new, skip_special_tokens=True), margin=min(margins))

    cases = {}
    long_prompt = "The quick brown fox"
    cases["raw_long"] = dict(prompt=long_prompt, **greedy_no_stop(hf_tok(long_prompt)["input_ids"], 40))
    # raw prompt: encode with the post-processor (BOS), as `--raw` does
    raw_prompt = "Grüße aus München! 日本語"
    cases["raw"] = dict(prompt=raw_prompt, **greedy(hf_tok(raw_prompt)["input_ids"]))

    # chat prompts: look for ones whose greedy reply ends on an end token and has no special token inside
    users = ["Hello", "Translate to French: good morning", "Привет", "Write a poem", "Dónde está", "hi", "1234",
             "Grüße", "東京", "How are you?", "the sea", "fox", "Bonjour", "नमस्ते", "dog", "blue", "Ok", "why?"]
    system = "You are a helpful assistant."
    found = None
    for u in users:
        ids, rendered = chat_ids([{"role": "system", "content": system}, {"role": "user", "content": u}])
        g = greedy(ids, strict=False)
        if g is None:
            continue
        print("candidate", repr(u), g["ids"])
        inner = g["ids"][:-1] if g["stopped_on_end_token"] else g["ids"]
        if g["stopped_on_end_token"] and len(inner) >= 2 and not any(hf_tok.convert_ids_to_tokens(i) in
                                                                       hf_tok.all_special_tokens for i in inner):
            found = (u, ids, rendered, g)
            break
    assert found, "no user message gives a greedy reply ending on an end token; change the seed"
    u, ids, rendered, g = found
    cases["chat"] = dict(system=system, user=u, rendered=rendered, **g)

    # second turn: the first reply (decoded text) goes into the history, then a new user message
    u2 = "Thank you"
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": u},
            {"role": "assistant", "content": g["text"]}, {"role": "user", "content": u2}]
    ids2, rendered2 = chat_ids(msgs)
    g2 = greedy(ids2)
    cases["chat_turn2"] = dict(system=system, user=u2, history=msgs[:3], rendered=rendered2, **g2)

    # no system message, one user turn (chat template without system)
    ids3, rendered3 = chat_ids([{"role": "user", "content": u}])
    cases["chat_no_system"] = dict(user=u, rendered=rendered3, **greedy(ids3))

    meta = dict(tokenizer_vocab=tok_vocab, model_vocab=config.vocab_size, end_ids=eos, max_new_tokens=MAX_NEW)
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(dict(meta=meta, cases=cases), f, indent=1, ensure_ascii=False)
    size = sum(os.path.getsize(os.path.join(OUT, x)) for x in os.listdir(OUT))
    for k, c in cases.items():
        print(k, len(c["prompt_ids"]), "prompt ids ->", c["ids"], repr(c["text"]), "end" if c["stopped_on_end_token"] else "")
    print(f"{size / 1024:.0f} KiB, files {sorted(os.listdir(OUT))}")


if __name__ == "__main__":
    main()
