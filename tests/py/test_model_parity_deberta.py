"""Float parity of mlxport's DeBERTa-v2/v3 runtime (src/model/deberta.c) against transformers'
DebertaV2ForSequenceClassification: random-weight fixtures built from the real configs of
DeBERTa-v3-base-mnli-fever-anli (3 labels) and DeBERTa-v3-xsmall binary NLI (2 labels), shrunk to
2 layers x 128 wide but keeping position_buckets / max_relative_positions / pos_att_type /
share_att_key / norm_rel_ebd, saved as safetensors and pytorch_model.bin. Inputs up to 512 tokens
reach the log-bucketed relative positions. The fixtures carry the real SentencePiece tokenizer
files of the shared folder."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED, SOURCE_DIR, record_parity, require_shared, run_cli
from parity_util import close, mlx_dequantized_state_dict

SPM_FIXTURES = ["deberta-cls", "deberta-bin-cls"]


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    require_shared()
    names = SPM_FIXTURES
    out = tmp_path_factory.mktemp("deberta")
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(out),
                    "--shared", SHARED, "--only", ",".join(names)], check=True, capture_output=True)
    return out, names




def classify(model, pairs, max_length):
    lines = "".join(f"{p}\t{h}\n" for p, h in pairs)
    p = run_cli("classify", "--model", str(model), "--pair", "--json", "--max-length", str(max_length), input=lines)
    return [json.loads(l)["logits"] for l in p.stdout.splitlines()]


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("kind", ["st", "bin"])
def test_logits(fx, which, kind):
    out, names = fx
    name = names[which]
    ref = json.load(open(out / name / "reference.json"))
    model = out / f"{name}-{kind}"
    for pairs, refl, ml in ((ref["pairs"], ref["logits"], 128), (ref["long_pairs"], ref["long_logits"], 512)):
        logits = classify(model, pairs, ml)
        record_parity(name, kind, f"logits@{ml}", close(logits, refl))
        assert [int(np.argmax(l)) for l in logits] == [int(np.argmax(l)) for l in refl]
    cfg = json.load(open(model / "config.json"))
    assert len(ref["logits"][0]) == len(cfg["id2label"]) == (3 if "bin" not in name else 2)


@pytest.mark.parametrize("which", [0, 1])
def test_hidden_states(fx, which):
    out, names = fx
    name = names[which]
    ref = json.load(open(out / name / "reference.json"))
    model = str(out / f"{name}-st")
    p = run_cli("embed", "--model", model, "--token-embeddings", "--max-length", "128",
                input="".join(t + "\n" for t in ref["texts"]))
    got = [json.loads(l)["token_embeddings"] for l in p.stdout.splitlines()]
    assert len(got) == len(ref["hidden"])
    for o, r in zip(got, ref["hidden"]):
        record_parity(name, "st", "hidden", close(o, r))
    # 512 tokens: relative distances beyond position_buckets / 2 use the log buckets
    p = run_cli("embed", "--model", model, "--token-embeddings", "--max-length", "512", input=ref["long_text"] + "\n")
    o = json.loads(p.stdout)["token_embeddings"]
    assert len(o) == len(ref["long_hidden"]) == 512
    record_parity(name, "st", "hidden@512", close(o, ref["long_hidden"]))


def test_batch_and_threads(fx):
    """A pair gives the same logits alone and inside a padded batch, with 1 or 2 threads."""
    out, names = fx
    ref = json.load(open(out / names[0] / "reference.json"))
    model = str(out / f"{names[0]}-st")
    lines = "".join(f"{p}\t{h}\n" for p, h in ref["pairs"])
    batch = [json.loads(l)["logits"] for l in run_cli("classify", "--model", model, "--pair", "--json",
                                                        "--batch-size", "8", input=lines).stdout.splitlines()]
    for threads in ("1", "2"):
        for i in (0, 7):
            p, h = ref["pairs"][i]
            alone = json.loads(run_cli("classify", "--model", model, "--pair", "--json", "--threads", threads,
                                       input=f"{p}\t{h}\n").stdout)["logits"]
            assert np.abs(np.array(alone) - np.array(batch[i])).max() <= 1e-5


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("multi", [False, True])
def test_zero_shot_vs_pipeline(fx, which, multi):
    from transformers import pipeline
    out, names = fx
    name = names[which]
    ref = json.load(open(out / name / "reference.json"))
    model = str(out / f"{name}-st")
    labels = ["politics", "sports", "food and cooking"]
    texts = ref["texts"][:6]
    args = ["zero-shot", "--model", model, "--labels", ",".join(labels), "--json"] + (["--multi-label"] if multi else [])
    got = [json.loads(l) for l in run_cli(*args, input="".join(t + "\n" for t in texts)).stdout.splitlines()]
    clf = pipeline("zero-shot-classification", model=model, framework="pt")
    for t, g in zip(texts, got):
        r = clf(t, candidate_labels=labels, multi_label=multi)
        assert g["labels"][0] == r["labels"][0]
        mine = dict(zip(g["labels"], g["scores"]))
        for lab, s in zip(r["labels"], r["scores"]):
            assert abs(mine[lab] - s) <= 1e-4


def test_errors(fx, tmp_path):
    import shutil
    from safetensors.numpy import load_file, save_file
    out, names = fx
    src = out / f"{names[0]}-st"
    bad = tmp_path / "missing"
    shutil.copytree(src, bad)
    w = load_file(str(bad / "model.safetensors"))
    del w["deberta.encoder.rel_embeddings.weight"]
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "deberta.encoder.rel_embeddings.weight" in p.stderr
    # unsupported variant: ConvLayer
    shutil.copy(src / "model.safetensors", bad / "model.safetensors")
    cfg = json.load(open(src / "config.json"))
    cfg["conv_kernel_size"] = 3
    (bad / "config.json").write_text(json.dumps(cfg))
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "conv_kernel_size" in p.stderr


# ---- MLX conversion (mlxport convert): float and q8

def _dequantized_reference(folder, pairs, hf_dir):
    """transformers' forward on the weights of an MLX folder, dequantized by MLX itself."""
    import torch
    import transformers
    sd = mlx_dequantized_state_dict(folder)
    tcfg = transformers.AutoConfig.from_pretrained(hf_dir)
    model = transformers.DebertaV2ForSequenceClassification(tcfg).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all("position_ids" in k for k in missing), missing
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    with torch.no_grad():
        enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True, max_length=128,
                  return_tensors="pt")
        return model(**enc).logits.numpy()


@pytest.mark.parametrize("mode", ["float32", "q8"])
def test_mlx_conversion(fx, tmp_path, mode):
    out, names = fx
    name = names[0]
    ref = json.load(open(out / name / "reference.json"))
    src = out / f"{name}-st"
    dst = tmp_path / f"{name}-{mode}"
    args = ["convert", "--hf-path", str(src), "--mlx-path", str(dst), "--dtype", "float32"]
    if mode == "q8":
        args += ["-q", "--q-bits", "8", "--q-group-size", "64"]
    run_cli(*args)
    pairs = ref["pairs"][:8]
    logits = np.array(classify(dst, pairs, 128))
    if mode == "float32":
        record_parity(name, "mlx-f32", "logits", close(logits, np.array(ref["logits"][:8])))
    else:
        # our q8 path vs transformers on the same weights dequantized by MLX
        record_parity(name, "mlx-q8", "logits", close(logits, _dequantized_reference(str(dst), pairs, str(src))))
        # and q8 stays close to the float model
        assert float(np.abs(logits - np.array(ref["logits"][:8])).max()) <= 0.05 * max(1.0, np.abs(logits).max())
