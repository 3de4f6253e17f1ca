"""Bit-exactness of mlxport's MLX affine quantization, dequantization and float casts against
real MLX (mx.quantize / mx.dequantize / astype on MLX's CPU backend).

mlxport is reached through `mlxport quantize` (raw safetensors in, safetensors out); inputs are
written with mx.save_safetensors and our outputs read back with mx.load."""
import glob
import itertools
import os
import subprocess

import numpy as np
import pytest

import mlx.core as mx  # noqa: E402  (a missing reference is a failure, not a skip)

SOURCE_DIR = os.environ.get("MP_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("MP_BIN", os.path.join(SOURCE_DIR, "build", "mlxport"))

BITS = [2, 3, 4, 5, 6, 8]
GROUPS = [32, 64, 128]
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
UINT = {mx.float32: mx.uint32, mx.float16: mx.uint16, mx.bfloat16: mx.uint16}


def hub_cache():
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache")), "huggingface", "hub")


def minilm_weights():
    snaps = glob.glob(os.path.join(hub_cache(), "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", "*",
                                   "model.safetensors"))
    if not snaps:
        pytest.fail("all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh", pytrace=False)
    return snaps[0]


def cli(*args, check=True):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"mlxport {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}")
    return p


def bits_of(a):
    """Exact bit pattern of an MLX array as numpy (floats viewed as unsigned ints)."""
    if a.dtype in UINT:
        a = a.view(UINT[a.dtype])
    return np.array(a)


def assert_same_bits(ours, ref, what):
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != {ref.dtype}"
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    x, y = bits_of(ours), bits_of(ref)
    if not np.array_equal(x, y):
        bad = np.argwhere(x != y)
        raise AssertionError(f"{what}: {len(bad)} of {x.size} differ, first at {bad[0].tolist()}: "
                             f"ours {x[tuple(bad[0])]:#x} mlx {y[tuple(bad[0])]:#x}")


def companions(name):
    base = name[:-len(".weight")] if name.endswith(".weight") else name
    return base + ".scales", base + ".biases"


def check_quant_file(src, tmp, dtype_name, bits, gs, names):
    """Our quantization of every tensor in `names` (dict name->mx array in the file `src`) vs MLX,
    then our dequantization of MLX's own quantized output vs mx.dequantize."""
    dt = DTYPES[dtype_name]
    out = os.path.join(tmp, f"q-{dtype_name}-{bits}-{gs}.safetensors")
    cli("quantize", src, out, "--bits", bits, "--group-size", gs, "--dtype", dtype_name)
    ours = mx.load(out)
    mlx_q = {}
    for name, w in names.items():
        wq, s, b = mx.quantize(w.astype(dt), group_size=gs, bits=bits)
        sn, bn = companions(name)
        tag = f"{name} {dtype_name} bits={bits} gs={gs}"
        assert_same_bits(ours[name], wq, tag + " packed")
        assert_same_bits(ours[sn], s, tag + " scales")
        assert_same_bits(ours[bn], b, tag + " biases")
        mlx_q[name], mlx_q[sn], mlx_q[bn] = wq, s, b
    # dequantize MLX's output with mlxport
    qin = os.path.join(tmp, f"mq-{dtype_name}-{bits}-{gs}.safetensors")
    dout = os.path.join(tmp, f"dq-{dtype_name}-{bits}-{gs}.safetensors")
    mx.save_safetensors(qin, mlx_q)
    cli("quantize", qin, dout, "--dequantize", "--bits", bits, "--group-size", gs)
    deq = mx.load(dout)
    for name in names:
        sn, bn = companions(name)
        ref = mx.dequantize(mlx_q[name], mlx_q[sn], mlx_q[bn], group_size=gs, bits=bits)
        assert_same_bits(deq[name], ref, f"{name} {dtype_name} bits={bits} gs={gs} dequantized")
    for p in (out, qin, dout):
        os.unlink(p)


@pytest.fixture(scope="module")
def real_weights(tmp_path_factory):
    """Real all-MiniLM-L6-v2 matrices: every 2-D float tensor of the embeddings, of layer 0 and of
    the pooler (the 30522-row word embedding cut to its first 1024 rows), to keep 54 combinations
    x 2 builds quick. The whole model is compared in test_convert.py."""
    w = mx.load(minilm_weights())
    sel = {}
    for k, v in w.items():
        if v.ndim != 2 or v.dtype != mx.float32:
            continue
        if k.startswith("encoder.layer.") and k.split(".")[2] != "0":
            continue
        sel[k] = v[:1024] if v.shape[0] > 1024 else v
    assert len(sel) >= 10
    path = str(tmp_path_factory.mktemp("real") / "minilm-2d.safetensors")
    mx.save_safetensors(path, sel)
    return path, sel


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_real_minilm_bit_exact(real_weights, tmp_path, dtype_name):
    path, sel = real_weights
    for bits, gs in itertools.product(BITS, GROUPS):
        check_quant_file(path, str(tmp_path), dtype_name, bits, gs, sel)


def adversarial_rows(G=128):
    rng = np.random.default_rng(1234)
    rows = []

    def row(x):
        x = np.asarray(x, np.float64).reshape(-1)
        rows.append(np.resize(x, G).astype(np.float32))

    row(np.zeros(G))                                  # constant zero
    row(np.full(G, 0.7)); row(np.full(G, -0.7))       # constant groups
    row(np.full(G, -0.0)); row(np.r_[0.0, np.full(G - 1, -0.0)])  # signed zeros
    row(-np.abs(rng.standard_normal(G)))              # all negative
    row(-np.abs(rng.standard_normal(G)) - 5)          # all negative, away from 0
    row(np.abs(rng.standard_normal(G)) + 3)           # all positive, away from 0
    row(np.arange(G) * 0.5 - 10)                      # exact .5 ties after scaling
    row((np.arange(G) % 16) * 0.25)                   # ties, 4-bit grid
    row((np.arange(G) % 16) * 0.25 - 2.0)             # symmetric, |min| == |max| tie of the anchor
    row(np.r_[np.full(G - 1, 1.0), 1000.0])           # one outlier
    row(np.r_[np.full(G - 1, -1.0), 1.0])
    row(np.r_[np.full(G - 1, 1.0), -1.0])
    row(np.full(G, 1e-40)); row(rng.standard_normal(G) * 1e-39)  # float32 subnormals
    row(rng.standard_normal(G) * 1e-8)                # below eps: q0 == 0 path
    row(rng.standard_normal(G) * 3e-6)                # float16 subnormal range
    row(rng.standard_normal(G) * 1e30)                # huge values (bf16/f32)
    row(np.linspace(-1e38, 1e38, G))                  # huge but finite range
    row(np.linspace(-65504, 65504, G))                # float16 extremes
    row(np.linspace(-65504, 0, G))
    row(rng.standard_normal(G) * np.exp(rng.uniform(-20, 20, G)))  # wide dynamic range
    return np.stack(rows)


@pytest.fixture(scope="module")
def adversarial(tmp_path_factory):
    w = adversarial_rows()
    d = tmp_path_factory.mktemp("adv")
    files = {}
    for name, dt in DTYPES.items():
        a = mx.array(w).astype(dt)
        if name == "float16":  # keep finite in float16
            a = mx.array(np.clip(w, -65504, 65504)).astype(dt)
        arrs = {"adv.weight": a, "adv_t": a.T.reshape(-1, 128)}
        p = str(d / f"adv-{name}.safetensors")
        mx.save_safetensors(p, arrs)
        files[name] = (p, arrs)
    return files


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_adversarial_bit_exact(adversarial, tmp_path, dtype_name):
    # sources in their own dtype (no cast) and float32 sources cast to each dtype
    path, arrs = adversarial[dtype_name]
    for bits, gs in itertools.product(BITS, GROUPS):
        check_quant_file(path, str(tmp_path), dtype_name, bits, gs, arrs)
    if dtype_name != "float32":
        p32, a32 = adversarial["float32"]
        if dtype_name == "bfloat16":
            for bits, gs in itertools.product(BITS, GROUPS):
                check_quant_file(p32, str(tmp_path), dtype_name, bits, gs, a32)


def test_from_f16_and_bf16_sources(tmp_path):
    """Sources stored as float16 / bfloat16 quantized to every output dtype."""
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((8, 256)) * 0.05).astype(np.float32)
    for src_dt in (mx.float16, mx.bfloat16):
        arrs = {"m.weight": mx.array(w).astype(src_dt)}
        p = str(tmp_path / "src.safetensors")
        mx.save_safetensors(p, arrs)
        for name in DTYPES:
            for bits, gs in [(4, 64), (3, 32), (8, 128)]:
                check_quant_file(p, str(tmp_path), name, bits, gs, arrs)


def test_nonfinite_rejected(tmp_path):
    base = np.linspace(-1, 1, 256, dtype=np.float32).reshape(2, 128)
    for bad, word in [(np.inf, "+inf"), (-np.inf, "-inf"), (np.nan, "NaN")]:
        w = base.copy()
        w[1, 77] = bad
        p = str(tmp_path / "bad.safetensors")
        mx.save_safetensors(p, {"encoder.layer.3.output.dense.weight": mx.array(w)})
        r = cli("quantize", p, str(tmp_path / "out.safetensors"), check=False)
        assert r.returncode == 3, r.stderr
        assert "encoder.layer.3.output.dense.weight" in r.stderr and word in r.stderr, r.stderr
        assert not os.path.exists(tmp_path / "out.safetensors")
    # finite in float32 but infinite once cast to float16: MLX would quantize inf; we refuse
    w = base.copy()
    w[0, 3] = 1e6
    p = str(tmp_path / "big.safetensors")
    mx.save_safetensors(p, {"big.weight": mx.array(w)})
    r = cli("quantize", p, str(tmp_path / "out.safetensors"), "--dtype", "float16", check=False)
    assert r.returncode == 3 and "big.weight" in r.stderr and "float16" in r.stderr, r.stderr
    # a group range beyond float32: MLX returns an infinite scale (dequantizes to NaN); we refuse
    w = base.copy()
    w[0, 0], w[0, 1] = 3e38, -3e38
    _, s, _ = mx.quantize(mx.array(w), group_size=32, bits=4)
    assert np.isinf(np.array(s)[0, 0])
    mx.save_safetensors(p, {"wide.weight": mx.array(w)})
    r = cli("quantize", p, str(tmp_path / "out.safetensors"), "--group-size", "32", check=False)
    assert r.returncode == 3 and "wide.weight" in r.stderr, r.stderr


def cast_inputs():
    rng = np.random.default_rng(99)
    parts = [rng.integers(0, 2**32, 1_000_000, dtype=np.uint64).astype(np.uint32)]
    h = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view(np.uint32).astype(np.int64)
    for d in range(-2, 3):  # every float16 value and its float32 neighbours
        parts.append(np.clip(h + d, 0, 2**32 - 1).astype(np.uint32))
    hb = np.arange(65536, dtype=np.uint32) << 16
    for d in (-1, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF):  # bfloat16 values, neighbours and ties
        parts.append((hb + np.uint32(d & 0xFFFFFFFF)).astype(np.uint32) if d > 0 else (hb - 1).astype(np.uint32))
    mid = (np.arange(65536, dtype=np.uint32) << 13) | 0x1000  # float16 rounding ties (normal range)
    parts.append(mid + (112 << 23)); parts.append((mid + (112 << 23)) | 0x80000000)
    parts.append(np.arange(0x33000000 - 64, 0x38800000 + 64, 41, dtype=np.uint32))  # float16 subnormal range
    parts.append(np.arange(0x477FE000 - 16, 0x47800000 + 16, dtype=np.uint32))  # float16 overflow edge
    parts.append(np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF,
                           0x00000001, 0x807FFFFF, 0x7F7FFFFF], dtype=np.uint32))
    return np.concatenate(parts)


def test_casts_bit_exact(tmp_path):
    u32 = cast_inputs()
    all16 = np.arange(65536, dtype=np.uint16)
    src = {
        "f32": mx.array(u32).view(mx.float32),
        "f16": mx.array(all16).view(mx.float16),
        "bf16": mx.array(all16).view(mx.bfloat16),
        "f32_2d": mx.array(u32[: 1 << 20]).view(mx.float32).reshape(1024, 1024),
    }
    p = str(tmp_path / "cast-in.safetensors")
    mx.save_safetensors(p, src)
    for name, dt in DTYPES.items():
        out = str(tmp_path / f"cast-{name}.safetensors")
        cli("quantize", p, out, "--cast-only", "--dtype", name)
        ours = mx.load(out)
        for k, v in src.items():
            assert_same_bits(ours[k], v.astype(dt), f"astype {k} -> {name}")
