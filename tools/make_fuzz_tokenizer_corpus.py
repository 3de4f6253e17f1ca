#!/usr/bin/env python3
"""Writes the seed corpora of the tokenizer fuzz targets:
  fuzz/corpus/fuzz_tokenizer_load/*    small tokenizer.json files covering every normalizer,
                                       pre-tokenizer, model, post-processor and decoder type
  fuzz/corpus/fuzz_tokenizer_encode/*  option byte + text (lines of tests/data/tokenizer_torture.txt)
and fuzz/synthetic_tokenizer.json (a small byte-level BPE tokenizer the encode target always
loads). Run: python3 tools/make_fuzz_tokenizer_corpus.py"""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def bpe_tokenizer():
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for b in range(256):
        vocab.setdefault(B2U[b], len(vocab))
    merges = []
    for a, b in [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"), ("in", "g"), ("Ġ", "s"), ("r", "e"), ("Ġa", "n"), ("Ġan", "d"), ("Ġ", "w"), ("o", "r")]:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
        merges.append(f"{a} {b}")
    vocab["<mask>"] = len(vocab)
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": t == "<mask>", "rstrip": False,
              "normalized": False, "special": True} for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")]
    added.append({"id": len(vocab), "content": "hello world", "single_word": True, "lstrip": False, "rstrip": True,
                  "normalized": True, "special": False})
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Replace", "pattern": {"String": "``"}, "content": "\""}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\d{1,3}"}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0], "trim_offsets": True, "add_prefix_space": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def wordpiece_tokenizer(normalizer, pre):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "##s", "##ing", "play", "un", "##able", "!", ",", ".",
             "caf", "##e", "東", "京", "1", "2", "##3"]
    vocab = {w: i for i, w in enumerate(words)}
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for t in words[:5]]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": normalizer,
        "pre_tokenizer": pre,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                           "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                              "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 20,
                  "vocab": vocab},
    }


def unigram_tokenizer():
    vocab = [["<unk>", 0.0], ["▁", -1.5], ["▁the", -2.0], ["s", -3.0], ["▁play", -4.0], ["ing", -3.5], ["a", -5.0],
             ["<0x41>", -9.0], ["e", -4.5], ["▁a", -2.5]]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Strip", "strip_left": True, "strip_right": True},
                                                            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True},
        "post_processor": {"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": True},
    }


def main():
    seeds = {
        "bpe_bytelevel.json": bpe_tokenizer(),
        "wp_bert.json": wordpiece_tokenizer({"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                                             "strip_accents": None, "lowercase": True}, {"type": "BertPreTokenizer"}),
        "wp_seq.json": wordpiece_tokenizer(
            {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}, {"type": "Lowercase"},
                                                 {"type": "Prepend", "prepend": "x"}, {"type": "NFC"}, {"type": "NFKD"}]},
            {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "MergedWithPrevious"},
                                                   {"type": "Digits", "individual_digits": True}, {"type": "Whitespace"},
                                                   {"type": "Split", "pattern": {"String": "e"}, "behavior": "MergedWithNext", "invert": True},
                                                   {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Contiguous", "invert": False}]}),
        "unigram.json": unigram_tokenizer(),
    }
    d = os.path.join(ROOT, "fuzz", "corpus", "fuzz_tokenizer_load")
    os.makedirs(d, exist_ok=True)
    for name, tj in seeds.items():
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
    with open(os.path.join(ROOT, "fuzz", "synthetic_tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(seeds["bpe_bytelevel.json"], f, ensure_ascii=False)
    d = os.path.join(ROOT, "fuzz", "corpus", "fuzz_tokenizer_encode")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(ROOT, "tests", "data", "tokenizer_torture.txt"), "rb") as f:
        lines = f.read().split(b"\n")
    for i, line in enumerate(lines[:40]):
        with open(os.path.join(d, f"seed{i:02d}"), "wb") as f:
            f.write(bytes([i * 37 % 256]) + line.replace(b" ", b"\t", 1 if i % 2 else 0))
    print("seeds written")


if __name__ == "__main__":
    main()
