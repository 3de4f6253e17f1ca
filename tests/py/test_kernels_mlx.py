"""Kernels against real MLX (quantized matmul, dequantize, embedding) and torch (LayerNorm,
GELU, softmax, attention). Python makes the inputs and the references, writes raw files and a
JSON manifest; build/kernel_check runs our kernels on them; outputs are compared here."""
import json
import os
import subprocess

import numpy as np
import pytest

import mlx.core as mx  # noqa: E402  (missing references are failures, not skips)
import torch  # noqa: E402

BUILD = os.environ.get("MP_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
CHECK = os.path.join(BUILD, "kernel_check")
SDT = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}


def raw(a):
    """numpy view of an mx array's bytes (bfloat16 kept as its uint16 bits)."""
    if a.dtype == mx.bfloat16:
        return np.array(a.view(mx.uint16))
    return np.array(a)


def mxname(a):
    return {mx.float32: "F32", mx.float16: "F16", mx.bfloat16: "BF16", mx.uint32: "U32"}[a.dtype]


class Run:
    def __init__(self, tmp, threads, isa=""):
        self.dir, self.cases, self.n, self.threads, self.isa = str(tmp), [], 0, threads, isa

    def put(self, arr):
        self.n += 1
        name = f"a{self.n}.bin"
        np.ascontiguousarray(arr).tofile(os.path.join(self.dir, name))
        return name

    def add(self, **case):
        self.n += 1
        case.setdefault("out", f"out{self.n}.bin")
        self.cases.append(case)
        return case

    def run(self):
        m = os.path.join(self.dir, "manifest.json")
        with open(m, "w") as f:
            json.dump({"threads": self.threads, "cases": self.cases}, f)
        env = dict(os.environ)
        if self.isa:  # cap the run-time ISA choice (scalar reference, AVX2)
            env["MP_ISA"] = self.isa
        p = subprocess.run([CHECK, m], capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr

    def out(self, case, shape, key="out"):
        return np.fromfile(os.path.join(self.dir, case[key]), dtype=np.float32).reshape(shape)


def relerr(a, ref):
    return float(np.abs(a.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


@pytest.fixture(scope="module", autouse=True)
def need_tool():
    if not os.path.exists(CHECK):
        pytest.fail(f"{CHECK} not built", pytrace=False)


@pytest.mark.parametrize("threads,isa", [(1, ""), (2, ""), (2, "avx2"), (1, "scalar")])
def test_quantized_matmul_vs_mlx(tmp_path, threads, isa):
    rng = np.random.default_rng(7 + threads)
    r = Run(tmp_path, threads, isa)
    checks = []
    for bits in (2, 3, 4, 5, 6, 8):
        for gs in (32, 64, 128):
            for wdt in (mx.float32, mx.bfloat16, mx.float16):
                K = gs * int(rng.integers(1, 4)) * (2 if gs == 32 else 1)
                N, M = int(rng.integers(1, 70)), int(rng.integers(1, 40))
                w = mx.array(rng.standard_normal((N, K)).astype(np.float32)).astype(wdt)
                q, s, b = mx.quantize(w, group_size=gs, bits=bits)
                x = mx.array(rng.standard_normal((M, K)).astype(np.float32))
                y = np.array(mx.quantized_matmul(x, q, s, b, transpose=True, group_size=gs, bits=bits))
                # Our decoded values are float32 (what quantized_matmul uses with float32 inputs).
                # mx.dequantize with bf16/f16 scales rounds q*s and the sum to that dtype, so the
                # reference for those is mx.dequantize with the same scales upcast to float32.
                deq = np.array(mx.dequantize(q, s.astype(mx.float32), b.astype(mx.float32),
                                             group_size=gs, bits=bits))
                c = r.add(op="linear", name=f"q{bits}g{gs}{mxname(s)}", M=M, K=K, N=N, dtype="U32",
                          bits=bits, group_size=gs, scale_dtype=mxname(s), x=r.put(np.array(x)),
                          w=r.put(raw(q)), scales=r.put(raw(s)), biases=r.put(raw(b)),
                          deq_out=f"deq{r.n}.bin")
                checks.append((c, y, deq))
    r.run()
    for c, y, deq in checks:
        ours = r.out(c, y.shape)
        e = relerr(ours, y)
        assert e <= 1e-4, f"{c['name']} M={c['M']} K={c['K']} N={c['N']}: rel err {e:g} vs mx.quantized_matmul"
        d = r.out(c, deq.shape, "deq_out")
        assert np.array_equal(d, deq), f"{c['name']}: dequantized values differ from mx.dequantize"


def test_float_linear_and_embedding_vs_mlx(tmp_path):
    rng = np.random.default_rng(3)
    r = Run(tmp_path, 2)
    checks = []
    for wdt in (mx.float32, mx.bfloat16, mx.float16):
        M, K, N = 37, 200, 130
        w = mx.array(rng.standard_normal((N, K)).astype(np.float32)).astype(wdt)
        bias = mx.array(rng.standard_normal((N,)).astype(np.float32)).astype(wdt)
        x = mx.array(rng.standard_normal((M, K)).astype(np.float32))
        y = np.array(mx.addmm(bias.astype(mx.float32), x, w.astype(mx.float32).T))
        c = r.add(op="linear", name=f"lin{mxname(w)}", M=M, K=K, N=N, dtype=mxname(w), x=r.put(np.array(x)),
                  w=r.put(raw(w)), bias=r.put(raw(bias)), bias_dtype=mxname(bias))
        checks.append((c, y))
    # embedding tables: quantized (as MLX quantizes nn.Embedding) and bf16
    V, D = 300, 128
    ids = rng.integers(0, V, size=50).astype(np.int32)
    table = mx.array(rng.standard_normal((V, D)).astype(np.float32))
    q, s, b = mx.quantize(table, group_size=64, bits=4)
    ref = np.array(mx.dequantize(q, s, b, group_size=64, bits=4))[ids]
    c = r.add(op="embedding", name="emb.q4", K=D, N=V, n=len(ids), dtype="U32", bits=4, group_size=64,
              scale_dtype="F32", w=r.put(raw(q)), scales=r.put(raw(s)), biases=r.put(raw(b)), ids=r.put(ids))
    tb = table.astype(mx.bfloat16)
    c2 = r.add(op="embedding", name="emb.bf16", K=D, N=V, n=len(ids), dtype="BF16", w=r.put(raw(tb)),
               ids=r.put(ids))
    r.run()
    for c_, y in checks:
        e = relerr(r.out(c_, y.shape), y)
        assert e <= 1e-5, f"{c_['name']}: rel err {e:g}"
    assert np.array_equal(r.out(c, ref.shape), ref)
    assert np.array_equal(r.out(c2, ref.shape), np.array(tb.astype(mx.float32))[ids])


@pytest.mark.parametrize("threads,isa", [(1, ""), (2, ""), (2, "avx2"), (1, "scalar")])
def test_rowops_vs_torch(tmp_path, threads, isa):
    rng = np.random.default_rng(11)
    r = Run(tmp_path, threads, isa)
    checks = []
    R, D = 23, 384
    x = rng.standard_normal((R, D)).astype(np.float32) * 3 + 1
    res = rng.standard_normal((R, D)).astype(np.float32)
    g = rng.standard_normal(D).astype(np.float32)
    b = rng.standard_normal(D).astype(np.float32)
    ln = torch.nn.functional.layer_norm(torch.from_numpy(x + res), (D,), torch.from_numpy(g), torch.from_numpy(b), 1e-12)
    c = r.add(op="layernorm", rows=R, dim=D, eps=1e-12, x=r.put(x), residual=r.put(res), gamma=r.put(g), beta=r.put(b))
    checks.append((c, ln.numpy(), 1e-5, "layernorm"))
    ln2 = torch.nn.functional.layer_norm(torch.from_numpy(x), (D,), torch.from_numpy(g), None, 1e-5)
    c = r.add(op="layernorm", rows=R, dim=D, eps=1e-5, x=r.put(x), gamma=r.put(g))
    checks.append((c, ln2.numpy(), 1e-5, "layernorm (no bias)"))
    v = (rng.standard_normal(4099) * 4).astype(np.float32)
    tv = torch.from_numpy(v)
    refs = {"gelu_erf": torch.nn.functional.gelu(tv), "gelu_tanh": torch.nn.functional.gelu(tv, approximate="tanh"),
            "relu": torch.relu(tv), "tanh": torch.tanh(tv), "silu": torch.nn.functional.silu(tv),
            "sigmoid": torch.sigmoid(tv)}
    for name, ref in refs.items():
        c = r.add(op="act", act=name, n=len(v), x=r.put(v))
        checks.append((c, ref.numpy(), 1e-5, name))
    s = (rng.standard_normal((R, 77)) * 5).astype(np.float32)
    mask = np.where(rng.random(77) < 0.3, np.finfo(np.float32).min, 0).astype(np.float32)
    sm = torch.softmax(torch.from_numpy(s + mask), dim=-1)
    c = r.add(op="softmax", rows=R, cols=77, x=r.put(s), mask=r.put(mask))
    checks.append((c, sm.numpy(), 1e-5, "softmax"))
    # attention as transformers computes it: scores + (1-mask)*finfo.min, softmax, @ V
    B, S, H, Dh = 3, 45, 4, 32
    q, k, vv = (rng.standard_normal((B, S, H * Dh)).astype(np.float32) for _ in range(3))
    km = np.ones((B, S), np.uint8)
    km[1, 30:] = 0
    km[2, 5:] = 0
    tq, tk, tvv = (torch.from_numpy(a).view(B, S, H, Dh).transpose(1, 2) for a in (q, k, vv))
    sc = tq @ tk.transpose(-1, -2) / np.sqrt(Dh)
    sc = sc + torch.from_numpy((1 - km[:, None, None, :].astype(np.float32)) * np.finfo(np.float32).min)
    att = (torch.softmax(sc, -1) @ tvv).transpose(1, 2).reshape(B, S, H * Dh)
    c = r.add(op="attention", batch=B, seq=S, heads=H, head_dim=Dh, scale=float(1 / np.sqrt(Dh)),
              q=r.put(q), k=r.put(k), v=r.put(vv), key_mask=r.put(km))
    checks.append((c, att.numpy(), 1e-5, "attention"))
    r.run()
    for c, ref, tol, name in checks:
        ours = r.out(c, ref.shape)
        err = float(np.abs(ours.astype(np.float64) - ref).max())
        assert err <= tol * max(1.0, float(np.abs(ref).max())), f"{name}: max abs err {err:g} vs torch"
