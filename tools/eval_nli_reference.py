#!/usr/bin/env python3
"""Reference accuracies of the rebuilt NLI classifiers, measured with transformers + torch (CPU).
Dev/test tool: these are the numbers mlxport's own `eval` must reproduce.

  .cache/venv/bin/python tools/eval_nli_reference.py [--models DIR] [--datasets DIR] [--json OUT]

Measures, for models/nli-minilm-l6-snli (3 labels) and models/nli-minilm-l6-snli-binary (2 labels):
  * MNLI validation_matched accuracy on the fixed 1,000-pair sample and on all 9,815 pairs.
    Sample rule: read mnli/validation_matched/dev.jsonl, one JSON object per non-empty line, in
    file order, indices 0..N-1 (N = 9815); the sample is
    `random.Random(0).sample(range(N), 1000)` (CPython's random; the accuracy does not depend
    on the order). 3-label model: prediction = argmax of the logits mapped through id2label,
    compared with the gold label. Binary model: gold entailment -> entailment, neutral and
    contradiction -> not_entailment.
  * Zero-shot SST-2 (sst2/dev.tsv, 872 sentences, gold 0 = negative, 1 = positive), candidate
    labels ["negative", "positive"], hypothesis template "This example is {}.", through
    transformers' ZeroShotClassificationPipeline (multi_label=False: softmax over the candidates'
    entailment logits).
Inputs are tokenised as (premise, hypothesis) pairs, truncation to the tokenizer's
model_max_length (512; no MNLI pair is that long), padded per batch.
"""
import argparse
import csv
import json
import os
import random
import sys
import time

import torch

NAMES = ["nli-minilm-l6-snli", "nli-minilm-l6-snli-binary"]
SAMPLE_SEED = 0
SAMPLE_SIZE = 1000


def load_mnli(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.append((r["premise"], r["hypothesis"], r["label"]))
    return rows


def mnli_sample_indices(n):
    return random.Random(SAMPLE_SEED).sample(range(n), SAMPLE_SIZE)


def load_sst2(path):
    with open(path, encoding="utf-8", newline="") as f:
        rd = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        head = next(rd)
        assert head == ["sentence", "label"], head
        return [(r[0], int(r[1])) for r in rd]


# ----------------------------------------------------------------------------- bundle mode
# For a machine without the 90 MB checkpoint (the lent GPU, whose transfers are capped): `pack`
# tokenises every evaluation input here with the rebuilt checkpoint's tokenizer and keeps the
# base tensors except the word embeddings, only the word-embedding rows of the ids used (with
# ids remapped: the same function on this data), and the delta files; `run` rebuilds the
# model from that with transformers and torch on any device and writes the same results JSON.
WORD_EMB = "embeddings.word_embeddings.weight"


def pack(args):
    import numpy as np
    from safetensors.numpy import load_file, save_file
    from transformers import AutoTokenizer
    mnli = load_mnli(os.path.join(args.datasets, "mnli", "validation_matched", "dev.jsonl"))
    sst2 = load_sst2(os.path.join(args.datasets, "sst2", "dev.tsv"))
    d3 = os.path.join(args.models, NAMES[0])
    tok = AutoTokenizer.from_pretrained(d3)
    m_enc = tok([a for a, _, _ in mnli], [b for _, b, _ in mnli], truncation=True)
    hyps = ["This example is negative.", "This example is positive."]
    z_enc = [tok([s for s, _ in sst2], [h] * len(sst2), truncation="only_first") for h in hyps]
    used = sorted({i for e in [m_enc] + z_enc for ids in e["input_ids"] for i in ids})
    remap = {o: n for n, o in enumerate(used)}
    full = load_file(os.path.join(d3, "model.safetensors"))
    bin_cls = load_file(os.path.join(args.models, NAMES[1], "model.safetensors"))
    delta = load_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", NAMES[0],
                                   "delta.safetensors"))
    for k, v in delta.items():  # the delta's values, widened, are the checkpoint's
        assert np.array_equal(full[k], v.astype(np.float32)), k
    trunk = {k: v for k, v in full.items() if k not in delta and k != "bert." + WORD_EMB}
    trunk["word_embeddings_used_rows"] = np.ascontiguousarray(full["bert." + WORD_EMB][used])
    trunk["binary.classifier.weight"] = bin_cls["classifier.weight"]
    trunk["binary.classifier.bias"] = bin_cls["classifier.bias"]
    os.makedirs(args.bundle, exist_ok=True)
    save_file(trunk, os.path.join(args.bundle, "trunk.safetensors"))
    save_file(delta, os.path.join(args.bundle, "delta.safetensors"))
    rm = lambda e: {"input_ids": [[remap[i] for i in x] for x in e["input_ids"]], "token_type_ids": e["token_type_ids"]}
    with open(os.path.join(args.bundle, "data.json"), "w") as f:
        json.dump({"mnli": rm(m_enc), "mnli_labels": [l for _, _, l in mnli], "sst2_labels": [y for _, y in sst2],
                   "zs": [rm(e) for e in z_enc], "zs_labels": ["negative", "positive"]}, f, separators=(",", ":"))
    for n in NAMES:
        with open(os.path.join(args.models, n, "config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(args.bundle, n + ".config.json"), "w") as f:
            json.dump(cfg, f)
    print(f"packed {len(mnli)} MNLI pairs, {len(sst2)}x2 SST-2 pairs, {len(used)} distinct ids", file=sys.stderr)


def run_bundle(args):
    import torch
    import transformers
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForSequenceClassification
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    transformers.logging.set_verbosity_error()
    dev = torch.device(args.device)
    with open(os.path.join(args.bundle, "data.json")) as f:
        data = json.load(f)
    trunk = load_file(os.path.join(args.bundle, "trunk.safetensors"))
    trunk.update({k: v.float() for k, v in load_file(os.path.join(args.bundle, "delta.safetensors")).items()})
    rows = trunk.pop("word_embeddings_used_rows")
    heads = {NAMES[1]: (trunk.pop("binary.classifier.weight"), trunk.pop("binary.classifier.bias")),
             NAMES[0]: (trunk["classifier.weight"], trunk["classifier.bias"])}
    cfgs = {}
    for n in NAMES:
        with open(os.path.join(args.bundle, n + ".config.json")) as f:
            cfgs[n] = json.load(f)
    c = dict(cfgs[NAMES[0]])
    c["vocab_size"] = rows.shape[0]
    c["id2label"] = {int(k): v for k, v in c["id2label"].items()}
    cfg = BertConfig(**{k: v for k, v in c.items() if k not in ("architectures", "_name_or_path")})
    cfg._attn_implementation = "eager"
    model = BertForSequenceClassification(cfg)
    trunk["bert." + WORD_EMB] = rows
    missing, unexpected = model.load_state_dict(trunk, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    assert not missing and not unexpected, (missing, unexpected)
    model.to(dev).eval()

    @torch.no_grad()
    def pooled(enc):
        ids_all, tt_all = enc["input_ids"], enc["token_type_ids"]
        out = torch.zeros(len(ids_all), cfg.hidden_size)
        order = sorted(range(len(ids_all)), key=lambda i: len(ids_all[i]))
        for s in range(0, len(order), 128):
            b = order[s:s + 128]
            L = max(len(ids_all[i]) for i in b)
            ids = torch.zeros(len(b), L, dtype=torch.long)
            tt, am = torch.zeros_like(ids), torch.zeros_like(ids)
            for j, i in enumerate(b):
                n = len(ids_all[i])
                ids[j, :n], tt[j, :n], am[j, :n] = torch.tensor(ids_all[i]), torch.tensor(tt_all[i]), 1
            out[b] = model.bert(input_ids=ids.to(dev), token_type_ids=tt.to(dev),
                                attention_mask=am.to(dev)).pooler_output.float().cpu()
        return out

    t0 = time.time()
    pm = pooled(data["mnli"])
    pz = [pooled(e) for e in data["zs"]]
    mnli_gold = data["mnli_labels"]
    sample = mnli_sample_indices(len(mnli_gold))
    results = {"mode": "bundle (reduced vocabulary, same function)", "device": str(dev),
               "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
               "transformers": transformers.__version__, "torch": torch.__version__,
               "mnli_pairs": len(mnli_gold), "mnli_sample": {"rule": "random.Random(0).sample(range(N), 1000)",
                                                            "first_indices": sample[:10]},
               "sst2_sentences": len(data["sst2_labels"]), "models": {}}
    for n in NAMES:
        w, b = heads[n]
        id2label = {int(k): v for k, v in cfgs[n]["id2label"].items()}
        binary = len(id2label) == 2
        gold = [(l if not binary or l == "entailment" else "not_entailment") for l in mnli_gold]
        logits = pm @ w.float().T + b.float()
        pred = [id2label[i] for i in logits.argmax(-1).tolist()]
        ok = [p == g for p, g in zip(pred, gold)]
        r = {"labels": r_labels(id2label),
             "mnli_all": {"n": len(ok), "correct": sum(ok), "accuracy": sum(ok) / len(ok)},
             "mnli_sample1000": {"n": len(sample), "correct": sum(ok[i] for i in sample),
                                 "accuracy": sum(ok[i] for i in sample) / len(sample)},
             "mnli_all_predicted_counts": {l: pred.count(l) for l in r_labels(id2label)}}
        if not binary:
            okb = [(p == "entailment") == (g == "entailment") for p, g in zip(pred, gold)]
            r["mnli_all_binary_collapsed_accuracy"] = sum(okb) / len(okb)
        ent = [k for k, v in id2label.items() if v.lower().startswith("entail")][0]
        # ZeroShotClassificationPipeline, multi_label=False: softmax over the candidates'
        # entailment logits; the top label is their argmax
        ez = torch.stack([(p @ w.float().T + b.float())[:, ent] for p in pz], 1)
        zpred = ez.softmax(-1).argmax(-1).tolist()
        zok = [p == y for p, y in zip(zpred, data["sst2_labels"])]
        r["sst2_zero_shot"] = {"n": len(zok), "correct": sum(zok), "accuracy": sum(zok) / len(zok),
                               "predicted_positive": sum(zpred)}
        results["models"][n] = r
        print(f"{n}: MNLI-m sample1000 {r['mnli_sample1000']['accuracy']:.4f} all {r['mnli_all']['accuracy']:.4f}"
              f"  SST-2 zero-shot {r['sst2_zero_shot']['accuracy']:.4f}", file=sys.stderr)
    results["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(results, indent=2) + "\n"
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    sys.stdout.write(text)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    cache = os.environ.get("MP_CACHE") or os.path.join(here, "..", ".cache")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.path.join(cache, "models"), help="rebuilt checkpoints (scripts/rebuild_nli.py)")
    ap.add_argument("--datasets", default=os.path.join(here, "..", "..", "shared", "datasets"))
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sample-only", action="store_true", help="MNLI: evaluate the 1,000-pair sample only")
    ap.add_argument("--pack", metavar="BUNDLE", help="write an evaluation bundle instead of evaluating")
    ap.add_argument("--bundle", metavar="BUNDLE", help="evaluate from a bundle (transformers + torch only)")
    ap.add_argument("--device", default="cpu", help="with --bundle: torch device")
    args = ap.parse_args()
    if args.pack:
        args.bundle = args.pack
        return pack(args)
    if args.bundle:
        return run_bundle(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline, logging as hf_logging
    import transformers
    hf_logging.set_verbosity_error()

    mnli = load_mnli(os.path.join(args.datasets, "mnli", "validation_matched", "dev.jsonl"))
    sample = mnli_sample_indices(len(mnli))
    sst2 = load_sst2(os.path.join(args.datasets, "sst2", "dev.tsv"))
    results = {"transformers": transformers.__version__, "torch": torch.__version__,
               "mnli_pairs": len(mnli), "mnli_sample": {"rule": "random.Random(0).sample(range(N), 1000)",
                                                      "first_indices": sample[:10]},
               "sst2_sentences": len(sst2), "models": {}}
    # The two checkpoints share every tensor but the classifier (checked below), so the MNLI
    # encoder pass runs once: logits = classifier(pooler_output), exactly what
    # BertForSequenceClassification.forward computes in eval mode (dropout is the identity).
    models, toks = {}, {}
    for name in NAMES:
        d = os.path.join(args.models, name)
        toks[name] = AutoTokenizer.from_pretrained(d)
        models[name] = AutoModelForSequenceClassification.from_pretrained(d).eval()
    sd = [m.state_dict() for m in models.values()]
    shared = [k for k in sd[0] if not k.startswith("classifier.")]
    assert all(torch.equal(sd[0][k], sd[1][k]) for k in shared), "encoders differ: evaluate separately"
    t0 = time.time()
    m3 = models[NAMES[0]]
    pooled = []
    if args.sample_only:  # MNLI: only the 1,000-pair sample (in sample order)
        mnli = [mnli[i] for i in sample]
        sample = list(range(len(mnli)))
        results["mnli_pairs"] = len(mnli)
        results["mnli_sample_only"] = True
    with torch.no_grad():
        pairs = [(a, b) for a, b, _ in mnli]
        for s in range(0, len(pairs), 64):
            p = pairs[s:s + 64]
            enc = toks[NAMES[0]]([a for a, _ in p], [b for _, b in p], truncation=True, padding=True,
                                 return_tensors="pt")
            pooled.append(m3.bert(**enc).pooler_output)
            if s % 1280 == 0:
                print(f"MNLI {s}/{len(pairs)} ({time.time() - t0:.0f}s)", file=sys.stderr)
    pooled = torch.cat(pooled)
    results["mnli_seconds"] = round(time.time() - t0, 1)
    for name in NAMES:
        model, tok = models[name], toks[name]
        t0 = time.time()
        id2label = model.config.id2label
        binary = len(id2label) == 2
        gold = [(l if not binary or l == "entailment" else "not_entailment") for _, _, l in mnli]
        with torch.no_grad():
            logits = model.classifier(pooled)
        pred = [id2label[i] for i in logits.argmax(-1).tolist()]
        ok = [p == g for p, g in zip(pred, gold)]
        r = {"labels": r_labels(id2label),
             "mnli_all": {"n": len(ok), "correct": sum(ok), "accuracy": sum(ok) / len(ok)},
             "mnli_sample1000": {"n": len(sample), "correct": sum(ok[i] for i in sample),
                                 "accuracy": sum(ok[i] for i in sample) / len(sample)},
             "mnli_all_predicted_counts": {l: pred.count(l) for l in r_labels(id2label)}}
        if not binary:  # the 3-label model read as entailment / not_entailment
            okb = [(p == "entailment") == (g == "entailment") for p, g in zip(pred, gold)]
            r["mnli_all_binary_collapsed_accuracy"] = sum(okb) / len(okb)
        clf = pipeline("zero-shot-classification", model=model, tokenizer=tok, device=-1)
        zs = clf([s for s, _ in sst2], candidate_labels=["negative", "positive"],
                 hypothesis_template="This example is {}.", multi_label=False, batch_size=32)
        zok = [z["labels"][0] == ("negative", "positive")[y] for z, (_, y) in zip(zs, sst2)]
        r["sst2_zero_shot"] = {"n": len(zok), "correct": sum(zok), "accuracy": sum(zok) / len(zok),
                               "predicted_positive": sum(z["labels"][0] == "positive" for z in zs)}
        r["sst2_seconds"] = round(time.time() - t0, 1)
        results["models"][name] = r
        print(f"{name}: MNLI-m sample1000 {r['mnli_sample1000']['accuracy']:.4f} all {r['mnli_all']['accuracy']:.4f}"
              f"  SST-2 zero-shot {r['sst2_zero_shot']['accuracy']:.4f}", file=sys.stderr)
    text = json.dumps(results, indent=2) + "\n"
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def r_labels(id2label):
    return [id2label[i] for i in range(len(id2label))]


if __name__ == "__main__":
    main()
