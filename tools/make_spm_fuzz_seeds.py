#!/usr/bin/env python3
"""Writes the small seed corpus of fuzz/fuzz_spm.c into fuzz/corpus/fuzz_spm/.

Seeds are tiny SentencePiece Unigram models trained here with the `sentencepiece` package
(a handful of custom normalization rules, so the precompiled_charsmap stays small), their
charsmaps alone, and small piece lists. The first byte of every seed selects the fuzz mode
(0 = ModelProto, 1 = charsmap + text, 2 = piece list + text). Run from the repository root:

    .cache/venv/bin/python tools/make_spm_fuzz_seeds.py
"""
import io
import os
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

OUT = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "fuzz_spm")

TEXT = """The quick brown fox jumps over the lazy dog.
Ｆｕｌｌ ｗｉｄｔｈ ﬁne ① ② ③ café cafe\u0301 naïve
東京 大阪 hello world hello world hello
"""

RULES = "41\t61\nFF21\t61\nFB01\t66 69\n2460\t31\n3000\t20\n"  # a tiny custom rule set (hex)


def train(**kw):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXT.splitlines() * 20), model_writer=buf,
                                   vocab_size=kw.pop("vocab_size", 60), model_type="unigram",
                                   character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, **kw)
    return buf.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tsv = os.path.join(d, "rules.tsv")
        with open(tsv, "w") as f:
            f.write(RULES)
        models = {
            "model_rules": train(normalization_rule_tsv=tsv),
            "model_bytefb": train(normalization_rule_tsv=tsv, byte_fallback=True, vocab_size=330),
            "model_userdef": train(normalization_rule_tsv=tsv, user_defined_symbols=["<sep>", "hello"]),
            "model_identity": train(normalization_rule_name="identity"),
        }
    for name, blob in models.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b"\x00" + blob)
        m = pb.ModelProto()
        m.ParseFromString(blob)
        cm = m.normalizer_spec.precompiled_charsmap
        if cm:
            with open(os.path.join(OUT, "charsmap_" + name[6:]), "wb") as f:
                f.write(b"\x01" + len(cm).to_bytes(4, "little") + cm + "ＡﬁA ①\u3000x\r\nb".encode())
    with open(os.path.join(OUT, "pieces"), "wb") as f:
        f.write(b"\x02" + "<unk>\na\nb\nab\nabc\n\u00e9\n<0xC3>\n<0xA9>\n\x00abcxab\u00e9".encode())
    print(f"wrote {len(os.listdir(OUT))} seeds to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
