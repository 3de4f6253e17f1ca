#!/usr/bin/env python3
"""What a user would do with MLX itself: load the safetensors, quantize every Linear/Embedding
weight (2-D float "*.weight" whose last dim divides the group size) after casting to the dtype,
cast the other float tensors, drop position_ids, save. Used by bench_convert.py.

    python bench/mlx_quantize_ref.py IN.safetensors OUT.safetensors BITS GROUP_SIZE DTYPE
"""
import sys

import mlx.core as mx


def main():
    src, dst, bits, gs, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    dt = getattr(mx, dtype)
    w = mx.load(src)
    out = {}
    for k, v in w.items():
        if k.endswith("position_ids"):
            continue
        if not mx.issubdtype(v.dtype, mx.floating):
            out[k] = v
        elif v.ndim == 2 and k.endswith(".weight") and v.shape[-1] % gs == 0:
            q, s, b = mx.quantize(v.astype(dt), group_size=gs, bits=bits)
            base = k[: -len(".weight")]
            out[k], out[base + ".scales"], out[base + ".biases"] = q, s, b
        else:
            out[k] = v.astype(dt)
    mx.save_safetensors(dst, out, metadata={"format": "mlx"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
