"""Helpers shared by the model-parity tests (tests/py/test_model_parity*.py)."""
import glob
import json
import os

import sys

import numpy as np


def modernbert_python():
    """A Python with transformers >= 4.48 (ModernBERT's reference): $MP_MODERNBERT_PYTHON, else the
    venv-modernbert that scripts/setup.sh test makes beside the reference venv; None if absent."""
    from conftest import SOURCE_DIR
    cands = [os.environ.get("MP_MODERNBERT_PYTHON")]
    if os.environ.get("MP_CACHE"):
        cands.append(os.path.join(os.environ["MP_CACHE"], "venv-modernbert", "bin", "python"))
    cands.append(os.path.join(os.path.dirname(sys.prefix), "venv-modernbert", "bin", "python"))
    cands.append(os.path.join(SOURCE_DIR, ".cache", "venv-modernbert", "bin", "python"))
    for c in cands:
        if c and os.path.exists(c):
            return c
    return None


def tf5_python():
    """The Python of the current-transformers reference (transformers 5.x on torch 2.x):
    $MP_TF5_PYTHON, else the venv-tf5 that scripts/setup.sh test makes beside the reference venv.
    Absent, the tests that need it fail (never skip): the set-up always makes it."""
    from conftest import SOURCE_DIR
    cands = [os.environ.get("MP_TF5_PYTHON")]
    if os.environ.get("MP_CACHE"):
        cands.append(os.path.join(os.environ["MP_CACHE"], "venv-tf5", "bin", "python"))
    cands.append(os.path.join(os.path.dirname(sys.prefix), "venv-tf5", "bin", "python"))
    cands.append(os.path.join(SOURCE_DIR, ".cache", "venv-tf5", "bin", "python"))
    for c in cands:
        if c and os.path.exists(c):
            return c
    raise AssertionError("no Python with the current transformers 5.x: scripts/setup.sh test makes "
                         "$MP_CACHE/venv-tf5 (default .cache/venv-tf5); run it, or set MP_TF5_PYTHON")


def close(ours, ref, tol=1e-4):
    """max |ours - ref| <= tol x max(1, max |ref|); returns the max |delta|."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(ours - ref).max())
    assert err <= tol * scale, f"max |delta| {err} > {tol} x {scale}"
    return err


def mlx_dequantized_weights(folder):
    """The tensors of an MLX folder as float32 numpy arrays, quantized matrices dequantized by MLX
    itself (mx.dequantize with the folder's bits / group size); .scales/.biases are dropped."""
    import mlx.core as mx
    w = {}
    for f in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        w.update(mx.load(f))
    q = json.load(open(os.path.join(folder, "config.json"))).get("quantization") or {}
    out = {}
    for k, v in w.items():
        if k.endswith(".scales") or k.endswith(".biases"):
            continue
        base = k[: -len(".weight")] if k.endswith(".weight") else None
        if base and v.dtype == mx.uint32 and base + ".scales" in w:
            v = mx.dequantize(v, w[base + ".scales"], w[base + ".biases"], group_size=q.get("group_size", 64),
                              bits=q.get("bits", 8))
        out[k] = np.array(v.astype(mx.float32))
    return out


def mlx_dequantized_state_dict(folder):
    """mlx_dequantized_weights as torch tensors (a state dict for transformers)."""
    import torch
    return {k: torch.from_numpy(v) for k, v in mlx_dequantized_weights(folder).items()}
