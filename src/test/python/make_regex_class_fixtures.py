"""Records which code points HF tokenizers' regex engine (Oniguruma) puts in each class our translator must
reproduce: src/test/resources/tokenizer/regex_classes.json maps a class to its [first, last] ranges.

Run: ~/.venvs/ref/bin/python src/test/python/make_regex_class_fixtures.py
"""
import json
import os

from tokenizers import Regex, pre_tokenizers

CLASSES = [r"\w", r"\W", r"\s", r"\S", r"\d", r"\h", r"\p{L}", r"\p{Lu}", r"\p{Ll}", r"\p{Lt}", r"\p{Lm}", r"\p{Lo}",
           r"\p{M}", r"\p{N}", r"\p{Nd}", r"\p{P}", r"\p{S}", r"\p{Z}", r"[^\r\n\p{L}\p{N}]", r"[^\s\p{L}\p{N}]",
           r"\p{Han}", r"\p{Latin}", r"\p{Alpha}", r"[[:punct:]]", r"(?i:k)", r"(?i:s)"]


def members(cls):
    """Code points matched by cls: the complement of what the "removed" behavior keeps."""
    codes = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(chr(c) for c in codes)
    kept = pre_tokenizers.Split(Regex(cls), behavior="removed").pre_tokenize_str(text)
    matched = [True] * len(codes)
    for _, (start, end) in kept:  # char offsets
        for i in range(start, end):
            matched[i] = False
    ranges = []
    for i, c in enumerate(codes):
        if not matched[i]:
            continue
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def main():
    out = {cls: members(cls) for cls in CLASSES}
    path = os.path.join(os.path.dirname(__file__), "..", "resources", "tokenizer", "regex_classes.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
