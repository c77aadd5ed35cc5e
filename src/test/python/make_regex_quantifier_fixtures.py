"""Oniguruma's brace quantifiers as HF tokenizers runs them, for OnigRegexTest.

reproduce: ~/.venvs/ref/bin/python src/test/python/make_regex_quantifier_fixtures.py
writes src/test/resources/tokenizer/regex_quantifiers.json: for each (pattern, text) the non-empty matches a Split
pre-tokenizer keeps (behavior="removed", invert=True keeps exactly the matches), or the error HF gives.
"""
import json
import os

from tokenizers import Regex, pre_tokenizers

CASES = [
    # {,n} is {0,n} in Oniguruma's Ruby syntax (Java refuses it)
    ("a{,2}", "aaaaab"),
    ("\\d{,3}", "12345 6 7890"),
    ("(ab){,2}c", "ababababc abc c"),
    ("[a-c]{,2}x", "abcx cx x bbbbx"),
    ("\\p{L}{,3}", "héllo wörld"),
    # the usual forms, unchanged
    ("a{2}", "aaaaa"),
    ("a{2,}", "a aa aaaaa"),
    ("a{1,3}", "aaaaaaa"),
    ("a{01}", "aa"),
    ("a{0}b", "ab b"),
    # lazy with a range
    ("a{1,3}?", "aaaa"),
    ("x.{,3}?y", "xaby xy xabcdy"),
    # n > m: the possessive {m,n}
    ("a{3,2}", "aaaaa"),
    ("a{3,2}a", "aaaa aaaaa"),
    # not an interval: a literal '{'
    ("x{", "x{y"),
    ("{,}", "a{,}b"),
    ("a{,", "a{,b"),
    ("a{}", "a{}"),
    ("a{0x}", "a{0x}"),
    ("a{ 1}", "a{ 1}"),
    ("a{1 }", "a{1 }"),
    ("a{1,2,3}", "a{1,2,3}"),
    ("\\{2}", "{2} {{"),
    ("[{,2}]+", "{,2} x2"),
    ("\\x{41}{2,}", "AAAB"),
    ("\\p{Lu}{2}", "ABC abc DE"),
    # forms whose meaning differs in Java: refused by OnigRegex (the test checks the refusal)
    ("ab{1}?c", "ac abc"),
    ("a{1,2}+", "aaaaab"),
    # errors in Oniguruma too
    ("a{100001}", "a"),
]


def matches(pattern, text):
    try:
        split = pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True)
    except Exception as e:  # noqa: BLE001 - the message is the fixture
        return {"pattern": pattern, "text": text, "error": str(e)}
    return {"pattern": pattern, "text": text, "matches": [piece for piece, _ in split.pre_tokenize_str(text)]}


def main():
    out = [matches(p, t) for p, t in CASES]
    path = os.path.join(os.path.dirname(__file__), "..", "resources", "tokenizer", "regex_quantifiers.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
