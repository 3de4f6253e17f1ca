"""Fits the rational erf of the vector kernels (src/kernels/kernels_simd.h v_erf):
erf(x) ~ x * P(x^2) / Q(x^2) on [0, 4] (x clamped to [-4, 4]; Q(0) = 1), near-minimax by iterated
reweighted least squares (Loeb's linearization), then checks the float32 evaluation against
math.erf on a dense grid of [-5, 5] and prints the coefficients.

    .cache/venv/bin/python tools/fit_erf.py 6 5     # P of degree 6, Q of degree 5 (what v_erf uses)
"""
import numpy as np, math, sys
from math import erf
C = 4.0
NP_, NQ = int(sys.argv[1]), int(sys.argv[2])
x = np.concatenate([np.linspace(0, C, 20000)])
f = np.array([erf(v) for v in x])
u = x * x
w = np.ones_like(x)
best = None
for it in range(60):
    # linearized: x*P(u) - f*Q(u) = 0 with Q(0) = 1, weights w / Q_prev
    A = np.concatenate([np.stack([x * u**k for k in range(NP_ + 1)], 1), np.stack([-f * u**k for k in range(1, NQ + 1)], 1)], 1)
    b = f
    sol, *_ = np.linalg.lstsq(A * w[:, None], b * w, rcond=None)
    p = sol[:NP_ + 1]; q = np.concatenate([[1.0], sol[NP_ + 1:]])
    Q = np.polyval(q[::-1], u)
    approx = x * np.polyval(p[::-1], u) / Q
    err = approx - f
    m = np.abs(err).max()
    if best is None or m < best[0]: best = (m, p.copy(), q.copy())
    w = w / np.abs(Q)  # Loeb
    w = w * (1 + 50 * (np.abs(err) / m) ** 2); w /= w.max()
m, p, q = best
# float32 evaluation check on a dense grid
xs = np.linspace(-5, 5, 2000001).astype(np.float32)
xc = np.clip(xs, -C, C).astype(np.float32); uu = (xc * xc).astype(np.float32)
P = np.float32(p[-1])
for c in p[-2::-1]: P = (P * uu + np.float32(c)).astype(np.float32)
Qv = np.float32(q[-1])
for c in q[-2::-1]: Qv = (Qv * uu + np.float32(c)).astype(np.float32)
r = np.clip((xc * P / Qv).astype(np.float32), -1, 1)
ref = np.array([erf(float(v)) for v in xs[::1]])
e = np.abs(r.astype(np.float64) - ref)
print("fit max err %.3g, float32 max abs err %.3g" % (m, e.max()))
print("P", [float(np.float32(c)) for c in p]); print("Q", [float(np.float32(c)) for c in q])
