#!/usr/bin/env python3
"""Train the mlxport NLI classifiers (dev/test tool; never on mlxport's run path).

Starts from the real sentence-transformers/all-MiniLM-L6-v2 weights as a
BertForSequenceClassification (3 labels: entailment / neutral / contradiction), freezes the
embeddings and the lower encoder layers (they run in eval mode: no dropout), and fine-tunes the
top encoder layers, the pooler and a new classifier on SNLI validation (the only NLI split
here that is NOT used for evaluation).

The binary variant (entailment / not_entailment) shares the 3-way model's encoder and pooler
and gets its own 2-row classifier, trained on the frozen pooled features (eval mode) of the
same SNLI pairs with neutral and contradiction folded into not_entailment.

Two steps, so that the training can run on a machine without the 90 MB base checkpoint:
  pack   (here: needs the base weights, the SNLI file and the pinned tokenizers/transformers):
         tokenise SNLI, keep the base tensors except the word embeddings, and keep only the
         word-embedding rows of the token ids SNLI uses (the word embeddings are frozen, so a
         model whose vocabulary is those rows, with ids remapped, computes exactly the same
         function on this data). Writes DIR/{trunk.safetensors,data.json,config.json,meta.json}.
  train  (CPU or CUDA; needs torch + transformers): trains from DIR and writes
         OUT/nli-minilm-l6-snli/{delta.safetensors,train_record.json} and
         OUT/nli-minilm-l6-snli-binary/{delta.safetensors,train_record.json}.

  python tools/train_nli.py pack  BUNDLE
  python tools/train_nli.py train BUNDLE --out models [--device cuda] [--holdout 0.1 ...]
  python tools/train_nli.py configs --out models      (the two config.json files)
The commands actually used, the data hashes and the hyper-parameters are recorded in
models/*/train_record.json and the model cards. With --holdout F a seeded fraction F of SNLI
is held out and its accuracy printed (hyper-parameter choice without touching MNLI); such
runs write nothing.
"""
import argparse
import glob
import hashlib
import json
import os
import random
import sys
import time

LABELS3 = ["entailment", "neutral", "contradiction"]
LABELS2 = ["entailment", "not_entailment"]
BASE_REPO = "sentence-transformers/all-MiniLM-L6-v2"
WORD_EMB = "embeddings.word_embeddings.weight"
DROP = ["embeddings.position_ids"]  # a non-persistent buffer in transformers' BertEmbeddings


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_base(hub_cache):
    root = os.path.join(hub_cache, "models--" + BASE_REPO.replace("/", "--"))
    ref = os.path.join(root, "refs", "main")
    if os.path.isfile(ref):
        snap = os.path.join(root, "snapshots", open(ref).read().strip())
        if os.path.isfile(os.path.join(snap, "model.safetensors")):
            return snap
    snaps = sorted(glob.glob(os.path.join(root, "snapshots", "*", "model.safetensors")))
    if not snaps:
        sys.exit(f"base model {BASE_REPO} not found under {hub_cache}; run scripts/setup.sh models")
    return os.path.dirname(snaps[0])


def default_hub():
    return os.environ.get("HF_HUB_CACHE") or os.path.join(os.environ.get("MP_CACHE", ".cache"), "huggingface", "hub")


def default_snli():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.join(here, "..", "..", "shared", "datasets", "snli", "validation", "dev.jsonl"))


def load_snli(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            lab = r.get("label")
            if lab not in LABELS3:  # drops -1 / "-" / missing gold
                continue
            rows.append((r["premise"], r["hypothesis"], LABELS3.index(lab)))
    return rows


# ----------------------------------------------------------------------------- configs
def write_config(base, out_dir, labels):
    """config.json of a rebuilt checkpoint: what transformers' save_pretrained writes for a
    BertForSequenceClassification with these labels (sorted keys, deterministic)."""
    from transformers import BertConfig
    cfg = BertConfig.from_pretrained(base, id2label=dict(enumerate(labels)),
                                     label2id={l: i for i, l in enumerate(labels)},
                                     problem_type="single_label_classification",
                                     architectures=["BertForSequenceClassification"])
    d = cfg.to_diff_dict()  # what save_pretrained writes
    d["_name_or_path"] = "mlxport/" + os.path.basename(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(d, f, indent=2, sort_keys=True)
        f.write("\n")


# ----------------------------------------------------------------------------- pack
def pack(args):
    from safetensors.numpy import load_file, save_file
    from transformers import BertTokenizerFast
    import numpy as np
    base = find_base(args.hub_cache)
    rows = load_snli(args.snli)
    tok = BertTokenizerFast.from_pretrained(base)
    enc = tok([r[0] for r in rows], [r[1] for r in rows], truncation=True, max_length=args.max_length)
    used = sorted({i for ids in enc["input_ids"] for i in ids})
    remap = {old: new for new, old in enumerate(used)}
    sd = load_file(os.path.join(base, "model.safetensors"))
    trunk = {k: v for k, v in sd.items() if k != WORD_EMB and k not in DROP}
    trunk["word_embeddings_used_rows"] = np.ascontiguousarray(sd[WORD_EMB][used])
    os.makedirs(args.bundle, exist_ok=True)
    save_file(trunk, os.path.join(args.bundle, "trunk.safetensors"))
    data = {"input_ids": [[remap[i] for i in ids] for ids in enc["input_ids"]],
            "token_type_ids": enc["token_type_ids"], "labels": [r[2] for r in rows]}
    with open(os.path.join(args.bundle, "data.json"), "w") as f:
        json.dump(data, f, separators=(",", ":"))
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(args.bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    import transformers, tokenizers
    meta = {"base_model": BASE_REPO, "base_snapshot": os.path.basename(base),
            "base_model_safetensors_sha256": sha256_file(os.path.join(base, "model.safetensors")),
            "data": {"file": "snli/validation/dev.jsonl", "sha256": sha256_file(args.snli), "pairs": len(rows),
                     "labels": {l: sum(r[2] == i for r in rows) for i, l in enumerate(LABELS3)}},
            "tokenization": {"pair": "(premise, hypothesis)", "truncation": True, "max_length": args.max_length,
                             "tokens": sum(len(x) for x in enc["input_ids"]), "distinct_ids": len(used)},
            "used_token_ids": used, "pack_versions": {"transformers": transformers.__version__,
                                                      "tokenizers": tokenizers.__version__}}
    with open(os.path.join(args.bundle, "meta.json"), "w") as f:
        json.dump(meta, f)
    print(f"packed {len(rows)} pairs, {meta['tokenization']['tokens']} tokens, {len(used)} distinct ids "
          f"into {args.bundle}", file=sys.stderr)


# ----------------------------------------------------------------------------- train
def train(args):
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file
    import transformers
    from transformers import BertConfig, BertForSequenceClassification

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    transformers.logging.set_verbosity_error()

    with open(os.path.join(args.bundle, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(args.bundle, "data.json")) as f:
        data = json.load(f)
    with open(os.path.join(args.bundle, "config.json")) as f:
        cfgd = json.load(f)
    trunk = load_file(os.path.join(args.bundle, "trunk.safetensors"))
    wemb = trunk.pop("word_embeddings_used_rows")
    cfgd.update(vocab_size=wemb.shape[0], num_labels=3, id2label=dict(enumerate(LABELS3)),
                label2id={l: i for i, l in enumerate(LABELS3)}, problem_type="single_label_classification")
    cfg = BertConfig(**{k: v for k, v in cfgd.items() if k not in ("architectures", "_name_or_path")})
    cfg._attn_implementation = "eager"
    model = BertForSequenceClassification(cfg)
    sd = {"bert." + k: v for k, v in trunk.items()}
    sd["bert." + WORD_EMB] = wemb
    gen = torch.Generator().manual_seed(args.seed)  # classifier init: N(0, 0.02), zero bias
    sd["classifier.weight"] = torch.randn(3, cfg.hidden_size, generator=gen) * cfg.initializer_range
    sd["classifier.bias"] = torch.zeros(3)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    assert not missing and not unexpected, (missing, unexpected)
    model.to(dev)

    n_layers = cfg.num_hidden_layers
    n_frozen = n_layers - args.train_layers
    for p in model.parameters():
        p.requires_grad = False
    trained_mods = [model.bert.encoder.layer[i] for i in range(n_frozen, n_layers)] + [model.bert.pooler, model.classifier]
    for m in trained_mods:
        for p in m.parameters():
            p.requires_grad = True
    if args.bitfit:  # also every bias / LayerNorm of the frozen part, and the token-type embeddings
        for n, p in model.named_parameters():
            if n.endswith(".bias") or "LayerNorm" in n or n == "bert.embeddings.token_type_embeddings.weight":
                p.requires_grad = True
    trained_names = [n for n, p in model.named_parameters() if p.requires_grad]

    def set_mode(training):
        model.eval()  # frozen part always in eval mode (no dropout)
        if training:
            for i in range(n_frozen, n_layers):
                model.bert.encoder.layer[i].train()
            model.dropout.train()

    ids_all, tt_all = data["input_ids"], data["token_type_ids"]
    labels = torch.tensor(data["labels"])
    N = len(labels)

    def batch(idx):
        L = max(len(ids_all[i]) for i in idx)
        ids = torch.zeros(len(idx), L, dtype=torch.long)
        tt = torch.zeros_like(ids)
        am = torch.zeros_like(ids)
        for j, i in enumerate(idx):
            n = len(ids_all[i])
            ids[j, :n] = torch.tensor(ids_all[i])
            tt[j, :n] = torch.tensor(tt_all[i])
            am[j, :n] = 1
        return ids.to(dev), tt.to(dev), am.to(dev)

    @torch.no_grad()
    def pooled(idx):
        set_mode(False)
        order = sorted(idx, key=lambda i: len(ids_all[i]))
        out = {}
        for s in range(0, len(order), 256):
            b = order[s:s + 256]
            ids, tt, am = batch(b)
            h = model.bert(input_ids=ids, token_type_ids=tt, attention_mask=am).pooler_output
            for j, i in enumerate(b):
                out[i] = h[j]
        return torch.stack([out[i] for i in idx])

    def acc3(idx):
        with torch.no_grad():
            pred = model.classifier(pooled(idx)).argmax(-1).cpu()
        return (pred == labels[idx]).float().mean().item()

    perm = list(range(N))
    random.Random(args.seed).shuffle(perm)
    n_hold = int(round(args.holdout * N))
    hold, tr = sorted(perm[:n_hold]), sorted(perm[n_hold:])

    decay = [p for n, p in model.named_parameters() if p.requires_grad and not (n.endswith("bias") or "LayerNorm" in n)]
    nodecay = [p for n, p in model.named_parameters() if p.requires_grad and (n.endswith("bias") or "LayerNorm" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": nodecay, "weight_decay": 0.0}], lr=args.lr)
    steps = (len(tr) + args.batch_size - 1) // args.batch_size * args.epochs
    warm = int(args.warmup * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / max(1, warm) if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
    order_gen = torch.Generator().manual_seed(args.seed)
    lossf = torch.nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    log = []
    t0 = time.time()
    for ep in range(args.epochs):
        set_mode(True)
        order = [tr[i] for i in torch.randperm(len(tr), generator=order_gen).tolist()]
        tot = 0.0
        for s in range(0, len(order), args.batch_size):
            idx = order[s:s + args.batch_size]
            ids, tt, am = batch(idx)
            logits = model(input_ids=ids, token_type_ids=tt, attention_mask=am).logits
            loss = lossf(logits, labels[idx].to(dev))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
        e = {"epoch": ep + 1, "loss": round(tot / len(order), 4), "seconds": round(time.time() - t0, 1)}
        if hold:
            e["holdout_accuracy"] = round(acc3(hold), 4)
        log.append(e)
        print(json.dumps(e), file=sys.stderr, flush=True)
    t_train = time.time() - t0

    # The stored dtype's rounded values ARE the model (the delta holds them).
    st_dtype = torch.float16 if args.delta_dtype == "f16" else torch.float32
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(p.to(st_dtype).float())
    res = {"train_accuracy": round(acc3(tr), 4)}
    if hold:
        res["holdout_accuracy"] = round(acc3(hold), 4)

    # ---- binary head on the frozen pooled features of the 3-way model
    t1 = time.time()
    feats = pooled(list(range(N)))
    y2 = (labels != 0).long().to(dev)
    head = torch.nn.Linear(cfg.hidden_size, 2).to(dev)
    with torch.no_grad():  # start from the 3-way head: entailment row, mean of the other two
        w, b = model.classifier.weight, model.classifier.bias
        head.weight.copy_(torch.stack([w[0], 0.5 * (w[1] + w[2])]))
        head.bias.copy_(torch.stack([b[0], 0.5 * (b[1] + b[2])]))
    hopt = torch.optim.Adam(head.parameters(), lr=args.binary_lr)
    trt = torch.tensor(tr, device=dev)
    for _ in range(args.binary_steps):
        hopt.zero_grad()
        loss = lossf(head(feats[trt]), y2[trt]) + args.binary_l2 * head.weight.pow(2).sum()
        loss.backward()
        hopt.step()
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(p.to(st_dtype).float())
        res["binary_train_accuracy"] = round((head(feats[trt]).argmax(-1) == y2[trt]).float().mean().item(), 4)
        if hold:
            ht = torch.tensor(hold, device=dev)
            res["binary_holdout_accuracy"] = round((head(feats[ht]).argmax(-1) == y2[ht]).float().mean().item(), 4)
    t_bin = time.time() - t1
    res.update(train_seconds=round(t_train, 1), binary_seconds=round(t_bin, 1))
    print(json.dumps(res), file=sys.stderr, flush=True)
    if args.holdout > 0:
        return

    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    sdict = model.state_dict()
    record = {
        "command": " ".join(["python", "tools/train_nli.py"] + sys.argv[1:]),
        "base_model": meta["base_model"], "base_snapshot": meta["base_snapshot"],
        "base_model_safetensors_sha256": meta["base_model_safetensors_sha256"],
        "data": meta["data"], "tokenization": meta["tokenization"], "pack_versions": meta["pack_versions"],
        "seed": args.seed, "deterministic_algorithms": True, "tf32": False, "device": device_name,
        "torch_threads": args.threads, "torch": torch.__version__, "transformers": transformers.__version__,
        "trained_tensors": "bert.encoder.layer.{%s}.*, bert.pooler.*, classifier.*" % ",".join(
            str(i) for i in range(n_frozen, n_layers)),
        "frozen": "embeddings and encoder layers 0..%d (eval mode, no dropout)%s" % (
            n_frozen - 1, "; their biases, LayerNorms and the token-type embeddings ARE trained (--bitfit)"
            if args.bitfit else ""),
        "trained_tensor_names": trained_names,
        "epochs": args.epochs, "learning_rate": args.lr, "batch_size": args.batch_size,
        "max_length": meta["tokenization"]["max_length"], "weight_decay": args.weight_decay,
        "optimizer": "AdamW (torch), grad-norm clip 1.0", "warmup_fraction": args.warmup,
        "schedule": "linear warm-up then linear decay to 0", "dropout": cfg.hidden_dropout_prob,
        "classifier_init": "N(0, initializer_range=0.02) from torch.Generator seeded with --seed; bias 0",
        "data_order": "torch.randperm per epoch from torch.Generator seeded with --seed",
        "delta_dtype": args.delta_dtype, "epoch_log": log,
        "snli_train_accuracy": res["train_accuracy"], "seconds": {"train": round(t_train, 1)},
    }
    d3 = os.path.join(args.out, "nli-minilm-l6-snli")
    os.makedirs(d3, exist_ok=True)
    delta3 = {n: sdict[n].detach().cpu().to(st_dtype).contiguous() for n in trained_names}
    save_file(delta3, os.path.join(d3, "delta.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d3, "train_record.json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    d2 = os.path.join(args.out, "nli-minilm-l6-snli-binary")
    os.makedirs(d2, exist_ok=True)
    delta2 = {"classifier.weight": head.weight.detach().cpu().to(st_dtype).contiguous(),
              "classifier.bias": head.bias.detach().cpu().to(st_dtype).contiguous()}
    save_file(delta2, os.path.join(d2, "delta.safetensors"), metadata={"format": "pt"})
    rec2 = dict(record)
    rec2.update({"binary_head": {
        "shares": "encoder and pooler of nli-minilm-l6-snli (its delta)",
        "init": "3-way head rows: entailment, mean(neutral, contradiction)",
        "features": "pooled output of nli-minilm-l6-snli, eval mode (frozen)",
        "optimizer": "Adam, full batch", "steps": args.binary_steps, "learning_rate": args.binary_lr,
        "l2": args.binary_l2, "labels": "entailment -> 0; neutral, contradiction -> 1 (not_entailment)"},
        "snli_train_accuracy": res["binary_train_accuracy"], "seconds": {"train": round(t_train, 1),
                                                                         "binary_head": round(t_bin, 1)}})
    with open(os.path.join(d2, "train_record.json"), "w") as f:
        json.dump(rec2, f, indent=2)
        f.write("\n")
    print(f"wrote {d3} and {d2}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("bundle")
    p.add_argument("--snli", default=default_snli())
    p.add_argument("--hub-cache", default=default_hub())
    p.add_argument("--max-length", type=int, default=128)
    c = sub.add_parser("configs")
    c.add_argument("--out", default="models")
    c.add_argument("--hub-cache", default=default_hub())
    t = sub.add_parser("train")
    t.add_argument("bundle")
    t.add_argument("--out", default="models")
    t.add_argument("--device", default="cpu")
    t.add_argument("--train-layers", type=int, default=2, help="top encoder layers fine-tuned")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup", type=float, default=0.1, help="linear warm-up fraction of the steps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--binary-steps", type=int, default=300, help="full-batch Adam steps for the binary head")
    t.add_argument("--binary-lr", type=float, default=0.01)
    t.add_argument("--binary-l2", type=float, default=1e-4)
    t.add_argument("--bitfit", action="store_true",
                   help="also train the biases and LayerNorms of the frozen layers and embeddings, and the "
                        "token-type embeddings (their values stay in eval mode: no dropout)")
    t.add_argument("--holdout", type=float, default=0.0, help="seeded fraction of SNLI held out (selection only)")
    t.add_argument("--delta-dtype", choices=["f32", "f16"], default="f16",
                   help="dtype of the stored trained tensors (the rounded values are the model)")
    args = ap.parse_args()
    if args.cmd == "pack":
        pack(args)
    elif args.cmd == "configs":
        base = find_base(args.hub_cache)
        write_config(base, os.path.join(args.out, "nli-minilm-l6-snli"), LABELS3)
        write_config(base, os.path.join(args.out, "nli-minilm-l6-snli-binary"), LABELS2)
    else:
        train(args)


if __name__ == "__main__":
    main()
