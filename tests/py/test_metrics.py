"""src/eval/metrics.c against scikit-learn / scipy / numpy, through tools/c/metrics_check.c.

Every number is compared to 1e-9. The bootstrap and the sampling are checked against a Python
re-implementation of the documented algorithm (docs/metrics.md, docs/datasets.md) whose
statistics come from sklearn/scipy and whose percentiles come from numpy.
"""
import json
import os
import subprocess

import numpy as np
import pytest
from scipy import special, stats
from sklearn import metrics as skm

BUILD = os.environ.get("MP_BUILD_DIR", "build")
TOOL = os.path.join(BUILD, "metrics_check")
TOL = 1e-9


def run(*parts):
    text = " ".join(str(p) for p in parts)
    r = subprocess.run([TOOL], input=text, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def fmt(a):
    return " ".join(repr(float(x)) for x in np.ravel(a))


def ints(a):
    return " ".join(str(int(x)) for x in np.ravel(a))


def close(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    assert a.shape == b.shape
    both_nan = np.isnan(a) & np.isnan(b)
    assert np.all(both_nan | (np.abs(a - b) <= TOL)), (a, b)


# ----------------------------------------------------------------- reference PRNG (docs/metrics.md)
M64 = (1 << 64) - 1


class Rng:
    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def next(self):
        s = self.s
        result = (self.rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self.rotl(s[3], 45)
        return result


def py_sample(n, k, seed):
    if k == 0 or k >= n:
        return list(range(n))
    perm = list(range(n))
    r = Rng(seed)
    for i in range(k):
        j = i + r.next() % (n - i)
        perm[i], perm[j] = perm[j], perm[i]
    return sorted(perm[:k])


def py_bootstrap(n, stat, b, level, seed):
    r = Rng(seed)
    vals = []
    for _ in range(b):
        idx = np.array([r.next() % n for _ in range(n)])
        v = stat(idx)
        if not np.isnan(v):
            vals.append(v)
    alpha = (1 - level) * 100
    return np.percentile(vals, [alpha / 2, 100 - alpha / 2])


# ----------------------------------------------------------------- tests

def test_tool_exists():
    if not os.path.exists(TOOL):
        pytest.fail(f"{TOOL} not built (cmake --build build)")


def test_xoshiro_reference_vector():
    # splitmix64 from seed 0: first output 0xe220a8397b1dcdaf (Vigna's reference implementation)
    r = Rng(0)
    assert r.s[0] == 0xE220A8397B1DCDAF
    got = run("rng", 12345, 20)["values"]
    r = Rng(12345)
    assert got == [r.next() for _ in range(20)]


@pytest.mark.parametrize("seed,k,n", [(0, 3, 50), (1, 2, 7), (7, 5, 400), (3, 3, 1)])
def test_classification(seed, k, n):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, k, n))
    got = run("cls", k, n, ints(gold), ints(pred))
    labels = list(range(k))
    p, r, f, _ = skm.precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    close(got["accuracy"], skm.accuracy_score(gold, pred))
    close(got["precision"], p)
    close(got["recall"], r)
    close(got["f1"], f)
    close(got["macro_precision"], skm.precision_score(gold, pred, labels=labels, average="macro", zero_division=0))
    close(got["macro_recall"], skm.recall_score(gold, pred, labels=labels, average="macro", zero_division=0))
    close(got["macro_f1"], skm.f1_score(gold, pred, labels=labels, average="macro", zero_division=0))
    assert got["confusion"] == skm.confusion_matrix(gold, pred, labels=labels).ravel().tolist()


def test_classification_absent_class():
    # class 2 never predicted and never gold: sklearn with labels=range(3) gives it 0
    gold = [0, 1, 1, 0, 1]
    pred = [0, 1, 0, 0, 1]
    got = run("cls", 3, 5, ints(gold), ints(pred))
    close(got["macro_f1"], skm.f1_score(gold, pred, labels=[0, 1, 2], average="macro", zero_division=0))


def test_classification_rejects_out_of_range():
    r = subprocess.run([TOOL], input="cls 2 2 0 1 0 2", capture_output=True, text=True)
    assert r.returncode == 3 and "outside" in r.stderr


@pytest.mark.parametrize("seed,n,tied", [(0, 30, False), (1, 200, False), (2, 50, True), (3, 500, True), (4, 2, False)])
def test_correlations(seed, n, tied):
    rng = np.random.default_rng(seed)
    if tied:
        x = rng.integers(0, 6, n).astype(float)  # many ties, like STS-B gold scores
        y = np.round(x + rng.normal(0, 1.5, n))
    else:
        x = rng.normal(size=n)
        y = 0.5 * x + rng.normal(size=n)
    got = run("corr", n, fmt(x), fmt(y))
    close(got["pearson"], stats.pearsonr(x, y)[0])
    close(got["spearman"], stats.spearmanr(x, y).correlation)
    close(got["rank_x"], stats.rankdata(x, method="average"))
    close(got["rank_y"], stats.rankdata(y, method="average"))


def test_correlation_constant_is_nan():
    got = run("corr", 4, "1 1 1 1", "1 2 3 4")
    assert got["pearson"] is None and got["spearman"] is None


@pytest.mark.parametrize("seed,n", [(0, 1), (1, 2), (2, 10), (3, 101), (4, 1000)])
def test_percentiles_match_numpy_linear(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=n)
    if n > 5:
        x[:5] = x[5]  # ties
    q = [0, 1, 2.5, 25, 50, 75, 90, 95, 97.5, 99, 99.9, 100]
    got = run("pct", len(q), fmt(q), n, fmt(x))
    close(got["percentiles"], np.percentile(x, q))
    lat = run("latency", n, fmt(x))
    close([lat["p50"], lat["p95"], lat["p99"]], np.percentile(x, [50, 95, 99]))
    close([lat["mean"], lat["min"], lat["max"]], [np.mean(x), np.min(x), np.max(x)])


@pytest.mark.parametrize("which", [0, 1])
def test_bootstrap_classification(which):
    rng = np.random.default_rng(5)
    n, k, b, seed = 60, 3, 200, 42
    gold = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.7, gold, rng.integers(0, k, n))
    got = run("boot_cls", k, n, b, 0.95, seed, which, ints(gold), ints(pred))
    if which == 0:
        stat = lambda idx: skm.accuracy_score(gold[idx], pred[idx])
    else:
        stat = lambda idx: skm.f1_score(gold[idx], pred[idx], labels=list(range(k)), average="macro", zero_division=0)
    close([got["lo"], got["hi"]], py_bootstrap(n, stat, b, 0.95, seed))
    assert got["n_valid"] == b


@pytest.mark.parametrize("which", [0, 1])
def test_bootstrap_correlation(which):
    rng = np.random.default_rng(6)
    n, b, seed = 40, 150, 7
    x = rng.integers(0, 5, n).astype(float)
    y = x + rng.normal(0, 1, n)
    got = run("boot_corr", n, b, 0.9, seed, which, fmt(x), fmt(y))

    def stat(idx):
        xs, ys = x[idx], y[idx]
        if np.all(xs == xs[0]) or np.all(ys == ys[0]):
            return float("nan")
        return stats.pearsonr(xs, ys)[0] if which == 0 else stats.spearmanr(xs, ys).correlation

    close([got["lo"], got["hi"]], py_bootstrap(n, stat, b, 0.9, seed))


@pytest.mark.parametrize("seed,n,k", [(0, 20, 3), (1, 100, 2), (2, 5, 10)])
def test_comparison(seed, n, k):
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 3, (n, k)).astype(np.float32)
    q = (p + rng.normal(0, 0.3, (n, k))).astype(np.float32)
    got = run("cmp", n, k, fmt(p), fmt(q))
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    lp, lq = special.log_softmax(p64, axis=1), special.log_softmax(q64, axis=1)
    kl = np.mean([stats.entropy(np.exp(lp[i]), np.exp(lq[i])) for i in range(n)])
    close(got["mean_kl"], kl)
    close(got["max_abs_diff"], np.max(np.abs(p64 - q64)))
    close(got["agreement"], np.mean(np.argmax(p, axis=1) == np.argmax(q, axis=1)))
    assert got["argmax_p"] == np.argmax(p, axis=1).tolist()


def test_kl_identical_is_zero():
    got = run("cmp", 2, 3, "1 2 3 -1 0 1", "1 2 3 -1 0 1")
    assert got["mean_kl"] == 0.0 and got["max_abs_diff"] == 0.0 and got["agreement"] == 1.0


@pytest.mark.parametrize("n,k,seed", [(10, 3, 0), (872, 100, 42), (9815, 500, 1), (5, 5, 3), (5, 0, 3), (1000, 999, 2)])
def test_sampling_matches_reference(n, k, seed):
    got = run("sample", n, k, seed)["indices"]
    assert got == py_sample(n, k, seed)
    assert got == sorted(set(got))
