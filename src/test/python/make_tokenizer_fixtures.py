"""Trains small tokenizers with HF `tokenizers` in the structures of real model families, and records what HF
gives for our corpus: ids with and without special tokens, and decodes. Output: src/test/resources/tokenizer/<name>/.

Run: ~/.venvs/ref/bin/python src/test/python/make_tokenizer_fixtures.py   (deterministic)
"""
import gzip
import io
import json
import os
import random
import sys

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

sys.path.insert(0, os.path.dirname(__file__))
from tokenizer_corpus import corpus, random_strings  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "tokenizer")

COHERE_SPECIALS = ["<PAD>", "<MASK_TOKEN>", "<BOS_TOKEN>", "<EOS_TOKEN>", "<UNK>", "<|START_OF_TURN_TOKEN|>",
                   "<|END_OF_TURN_TOKEN|>", "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>", "<|SYSTEM_TOKEN|>",
                   "<|START_RESPONSE|>", "<|START_THINKING|>", "<|END_THINKING|>"]

DIGITS_3 = r"\d{1,3}(?=(?:\d{3})*\b)"
O200K = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
CL100K = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def training_text():
    rng = random.Random(7)
    lines = corpus() + random_strings(11, 200)
    rng.shuffle(lines)
    return lines * 3


def byte_level_trainer(vocab_size, specials):
    return trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet())


def make_aya():
    """Tiny Aya's structure: digit-group split, GPT-4o-style split, ByteLevel without regex, BOS template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(DIGITS_3), behavior="isolated"),
        pre_tokenizers.Split(Regex(O200K), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(training_text(), byte_level_trainer(2000, COHERE_SPECIALS))
    tok.add_special_tokens(["<|END_RESPONSE|>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<BOS_TOKEN> $A", pair="<BOS_TOKEN> $A $B", special_tokens=[("<BOS_TOKEN>", tok.token_to_id("<BOS_TOKEN>"))])
    return tok


def make_gpt2():
    """GPT-2: ByteLevel with its regex, ByteLevel post-processor; added tokens with lstrip/rstrip/single_word."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(training_text(), byte_level_trainer(1500, ["<|endoftext|>"]))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True), "<|im_start|>", "<|im_end|>"])
    tok.add_tokens([AddedToken("hello world", single_word=True), AddedToken("[TAB]", rstrip=True, normalized=False),
                    AddedToken("abc", single_word=True, normalized=False)])
    return tok


def make_llama3():
    """Llama-3: cl100k-style Split + ByteLevel without regex, ignore_merges, Sequence post-processor."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CL100K), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(training_text(), byte_level_trainer(1800, ["<|begin_of_text|>", "<|end_of_text|>",
                                                                        "<|start_header_id|>", "<|end_header_id|>",
                                                                        "<|eot_id|>"]))
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))]),
    ])
    return tok


def make_cohere_old():
    """Cohere's older tokenizer: NFC, individual digits, ByteLevel with regex and prefix space."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(training_text(), byte_level_trainer(1500, COHERE_SPECIALS))
    tok.post_processor = processors.TemplateProcessing(
        single="<BOS_TOKEN> $A <EOS_TOKEN>", pair="<BOS_TOKEN> $A $B <EOS_TOKEN>",
        special_tokens=[("<BOS_TOKEN>", tok.token_to_id("<BOS_TOKEN>")), ("<EOS_TOKEN>", tok.token_to_id("<EOS_TOKEN>"))])
    return tok


def with_byte_fallback(trained, specials, **bpe_args):
    """Rebuilds a trained BPE with <0xNN> byte tokens after the specials, like SentencePiece conversions."""
    data = json.loads(trained.to_str())
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for token, _ in sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1]):
        if token not in vocab:
            vocab[token] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in data["model"]["merges"]]
    return models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>", fuse_unk=True, **bpe_args)


def sp_trainer(vocab_size):
    return trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
                               limit_alphabet=120)


def make_sp():
    """Mistral/Llama-2 (converted SentencePiece): Metaspace(first, no split) + byte_fallback, SP decoders."""
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    trainer_tok.train_from_iterator(training_text(), sp_trainer(1500))
    tok = Tokenizer(with_byte_fallback(trainer_tok, ["<unk>", "<s>", "</s>"]))
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                       special_tokens=[("<s>", 1)])
    return tok


def make_sp_legacy():
    """Llama-2 legacy conversion: Prepend + Replace normalizer, no pre-tokenizer, Metaspace-free decoders."""
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    trainer_tok.pre_tokenizer = pre_tokenizers.Split(Regex("\u2581[^\u2581]*"), behavior="isolated")
    trainer_tok.train_from_iterator(training_text(), sp_trainer(1200))
    tok = Tokenizer(with_byte_fallback(trainer_tok, ["<unk>", "<s>", "</s>"]))
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A $B", special_tokens=[("<s>", 1), ("</s>", 2)])
    return tok


def make_misc_split():
    """Every Split behavior and invert, Punctuation, Digits runs, NFKC + Lowercase + Replace + Strip."""
    tok = Tokenizer(models.BPE(continuing_subword_prefix="##", unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Punctuation(behavior="contiguous"),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Split(Regex(r"[aeiou]"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\p{Lo}+"), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["[UNK]", "[CLS]", "[SEP]"], show_progress=False,
                                  continuing_subword_prefix="##", initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer)
    tok.add_tokens([AddedToken("Hello World", normalized=True), AddedToken("<NoNorm>", normalized=False)])
    tok.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    return tok


def make_misc_meta():
    """Metaspace(always, split) after Whitespace/Punctuation variants, NFKD, unk without byte fallback."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Prepend("~")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Punctuation(behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"(?i)[xyz]+"), behavior="isolated", invert=True),
        pre_tokenizers.Split(Regex(r"\d\b"), behavior="merged_with_previous"),
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
    ])
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)])
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=["<unk>", "<cls>"], show_progress=False,
                                  end_of_word_suffix="</w>", limit_alphabet=200)
    tok.train_from_iterator(training_text(), trainer)
    tok.post_processor = processors.Sequence([processors.TemplateProcessing(
        single="<cls> $A <cls>", pair="$A $B", special_tokens=[("<cls>", 1)])])
    return tok


def make_whitespace():
    """Whitespace pre-tokenizer, Bert normalizer, Metaspace decoder with prepend never, no post-processor."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=True))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    tok.decoder = decoders.Sequence([decoders.Replace(Regex(r"[aeiou]"), "*"), decoders.Fuse()])
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=["[UNK]", "[PAD]"], show_progress=False,
                                  limit_alphabet=150)
    tok.train_from_iterator(training_text(), trainer)
    return tok


MAKERS = {
    "aya": make_aya, "gpt2": make_gpt2, "llama3": make_llama3, "cohere_old": make_cohere_old, "sp": make_sp,
    "sp_legacy": make_sp_legacy, "misc_split": make_misc_split, "misc_meta": make_misc_meta,
    "whitespace": make_whitespace,
}


def main():
    texts = corpus() + random_strings(1234, 400)
    for name, make in MAKERS.items():
        tok = make()
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        tok.save(os.path.join(folder, "tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))  # what Java will read
        # gzip (mtime 0, so reruns give identical bytes) keeps the committed fixtures small.
        with gzip.GzipFile(os.path.join(folder, "encode.jsonl.gz"), "wb", mtime=0) as gz, \
                io.TextIOWrapper(gz, encoding="utf-8", newline="\n") as f:
            for text in texts:
                with_special = tok.encode(text, add_special_tokens=True).ids
                without = tok.encode(text, add_special_tokens=False).ids
                row = {"text": text, "ids": with_special, "ids_no_special": without,
                       "decoded": tok.decode(with_special, skip_special_tokens=False),
                       "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        rng = random.Random(99)
        size = tok.get_vocab_size(with_added_tokens=True)
        with open(os.path.join(folder, "decode.jsonl"), "w", encoding="utf-8") as f:
            for _ in range(150):
                ids = [rng.randrange(size) for _ in range(rng.randint(0, 12))]
                f.write(json.dumps({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)},
                                   ensure_ascii=False) + "\n")
        print(name, "vocab", size, file=sys.stderr)


if __name__ == "__main__":
    main()
