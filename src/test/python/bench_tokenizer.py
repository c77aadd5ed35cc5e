"""Encoding speed of HF tokenizers (Rust) on ONE thread, for comparison with `./aya tokenize --bench`.

Usage: RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
         ~/.venvs/ref/bin/python src/test/python/bench_tokenizer.py TOKENIZER_JSON CORPUS_TXT [--make-corpus MB]
With --make-corpus, first writes a deterministic multilingual corpus of about MB megabytes to CORPUS_TXT
(lines of random words drawn from our test corpus, with numbers and punctuation).
"""
import os
import random
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(__file__))
from tokenizer_corpus import LANGUAGES  # noqa: E402


def make_corpus(path, megabytes):
    rng = random.Random(5)
    words = " ".join(LANGUAGES.values()).split()
    size = 0
    with open(path, "w", encoding="utf-8") as f:
        while size < megabytes * 1_000_000:
            parts = []
            for _ in range(rng.randint(8, 40)):
                r = rng.random()
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 9))) if r < 0.05 else rng.choice(words))
            line = " ".join(parts)
            f.write(line + "\n")
            size += len(line.encode("utf-8")) + 1


def main():
    tok_path, corpus = sys.argv[1], sys.argv[2]
    if "--make-corpus" in sys.argv:
        make_corpus(corpus, float(sys.argv[sys.argv.index("--make-corpus") + 1]))
    with open(corpus, encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]
    size = sum(len(l.encode("utf-8")) for l in lines)
    tok = Tokenizer.from_file(tok_path)
    tokens = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))  # warm-up
    print(f"corpus: {len(lines)} lines, {size / 1e6:.2f} MB, {tokens} tokens")
    for rep in range(1, 4):
        t0 = time.perf_counter()
        n = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))
        s = time.perf_counter() - t0
        print(f"HF encode_batch pass {rep}: {s:.3f} s, {size / 1e6 / s:.2f} MB/s, {n / s:.0f} tokens/s")
    if hasattr(tok, "encode_batch_fast"):  # no offsets: HF's fastest batch path
        for rep in range(1, 4):
            t0 = time.perf_counter()
            n = sum(len(e.ids) for e in tok.encode_batch_fast(lines, add_special_tokens=False))
            s = time.perf_counter() - t0
            print(f"HF encode_batch_fast pass {rep}: {s:.3f} s, {size / 1e6 / s:.2f} MB/s, {n / s:.0f} tokens/s")


if __name__ == "__main__":
    main()
