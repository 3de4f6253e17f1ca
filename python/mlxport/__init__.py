"""mlxport: Hugging Face encoder models converted to MLX format and run natively, from Python.

ctypes bindings over libmlxport's public C API (include/mlxport.h); no Python runs on the compute
path, and the GIL is released during every C call.

    import mlxport
    m = mlxport.Model("sentence-transformers/all-MiniLM-L6-v2")
    emb = m.embed(["A man is eating food.", "A man is eating pasta."], normalize_embeddings=True)
    nli = mlxport.Model("path/to/nli-model")
    nli.classify([("A man plays a guitar.", "A person makes music.")])[0]["label"]

Errors raise mlxport.MlxportError carrying the C library's message and status.
"""
import ctypes
import json
import math

import numpy as np

from . import _lib
from ._lib import lib

__all__ = ["Model", "Tokenizer", "MlxportError", "convert", "evaluate", "version", "library_path"]

_STATUS = {1: "invalid argument", 2: "I/O error", 3: "format error", 4: "unsupported", 5: "not found",
           6: "out of memory", 7: "security", 8: "internal error", 9: "cancelled"}


class MlxportError(RuntimeError):
    """A failed libmlxport call: str(e) is the C library's message; e.status its mlxport_status
    (an int) and e.status_name its name ("not found", ...)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.status_name = (lib.mlxport_status_name(status) or b"").decode()


def _check(status):
    if status != 0:
        msg = (lib.mlxport_last_error() or b"").decode("utf-8", "replace")
        raise MlxportError(status, msg or _STATUS.get(status, f"status {status}"))


def _b(s):
    return None if s is None else (s if isinstance(s, bytes) else str(s).encode("utf-8"))


def _strings(items):
    enc = [_b(x) for x in items]
    arr = (ctypes.c_char_p * max(len(enc), 1))(*enc)
    return arr, enc  # keep enc alive with arr


def version():
    """The loaded libmlxport's version string."""
    return lib.mlxport_version().decode()


def library_path():
    """The path of the loaded libmlxport."""
    return _lib.LIBRARY_PATH


_check(lib.mlxport_check_version(lib.mlxport_version_number()))


class Model:
    """A model: a Hugging Face or MLX folder, or a repo id in the Hugging Face cache.

    threads: compute threads (0 = all cores); compute: "fast" (integer kernels for MLX-quantized
    layers) or "faithful" (what MLX computes); max_length: tokens per text (0 = the model's);
    device: "cpu" (default), "cuda" or "cuda:N" (a library built with CUDA, docs/cuda.md);
    device_dtype: the compute dtype on a GPU, "float16" (default), "bfloat16" or "float32"."""

    def __init__(self, path_or_repo, *, threads=0, compute="fast", max_length=0, device=None, device_dtype=None):
        if compute not in ("fast", "faithful"):
            raise ValueError("compute must be 'fast' or 'faithful'")
        o = _lib.ModelOptions()
        lib.mlxport_model_options_init(ctypes.byref(o))
        o.threads, o.compute, o.max_length = threads, 0 if compute == "fast" else 1, max_length
        o.batch_size = 1 << 20  # batches are formed here, per call (embed's batch_size)
        self._device = _b(device)  # kept alive while the library reads it
        o.device = self._device
        self._device_dtype = _b(device_dtype)
        o.device_dtype = self._device_dtype
        h = ctypes.c_void_p()
        _check(lib.mlxport_model_open(_b(path_or_repo), ctypes.byref(o), ctypes.byref(h)))
        self._h = h
        self.path = str(path_or_repo)
        self.dim = lib.mlxport_model_dim(h)
        self.labels = [lib.mlxport_model_label(h, i).decode() for i in range(lib.mlxport_model_num_labels(h))]
        self.is_quantized = bool(lib.mlxport_model_is_quantized(h))

    def close(self):
        """Releases the model (also done when it is garbage-collected)."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.mlxport_model_close(h)

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError("the model is closed")
        return self._h

    def embed(self, sentences, batch_size=32, show_progress_bar=None, output_value="sentence_embedding",
              convert_to_numpy=True, normalize_embeddings=False):
        """Sentence embeddings, with sentence-transformers' encode conventions: a list of strings
        gives an array [n, dim] (float32), one string a vector [dim]; batch_size texts per forward
        pass (sorted by length as sentence-transformers does); normalize_embeddings L2-normalizes;
        convert_to_numpy=False gives a list of vectors; output_value="token_embeddings" gives one
        [tokens, dim] array per text. show_progress_bar is accepted and ignored."""
        single = isinstance(sentences, (str, bytes))
        texts = [sentences] if single else list(sentences)
        h = self._handle()
        if output_value == "token_embeddings":
            out = [self.token_embeddings(t) for t in texts]
            return out[0] if single else out
        if output_value != "sentence_embedding":
            raise ValueError("output_value must be 'sentence_embedding' or 'token_embeddings'")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        res = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            arr, keep = _strings([texts[i] for i in idx])
            buf = np.empty((len(idx), self.dim), dtype=np.float32)
            _check(lib.mlxport_model_embed(h, len(idx), arr, int(bool(normalize_embeddings)),
                                           buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
            res[idx] = buf
        if single:
            return res[0]
        return res if convert_to_numpy else list(res)

    encode = embed  # the sentence-transformers name

    def classify(self, inputs, return_logits=False):
        """Sequence classification of texts or (text, text_pair) pairs (premise, hypothesis for NLI).
        Returns one dict per input: label, score (its softmax probability), scores (label ->
        probability) and logits; or, with return_logits=True, the logits array [n, labels]."""
        h = self._handle()
        if not self.labels:
            raise MlxportError(4, f"{self.path}: the model has no sequence-classification head")
        items = list(inputs)
        pairs = bool(items) and isinstance(items[0], (tuple, list))
        a, ka = _strings([x[0] if pairs else x for x in items])
        b, kb = _strings([x[1] for x in items]) if pairs else (None, None)
        logits = np.empty((len(items), len(self.labels)), dtype=np.float32)
        if items:
            _check(lib.mlxport_model_classify(h, len(items), a, b, logits.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
        if return_logits:
            return logits
        out = []
        for row in logits.astype(np.float64):
            p = np.exp(row - row.max())
            p /= p.sum()
            k = int(p.argmax())
            out.append({"label": self.labels[k], "score": float(p[k]),
                        "scores": {lab: float(x) for lab, x in zip(self.labels, p)}, "logits": row.tolist()})
        return out

    def zero_shot(self, texts, candidate_labels, hypothesis_template="This example is {}.", multi_label=False):
        """Zero-shot classification through an NLI model, as transformers'
        pipeline("zero-shot-classification"): one dict per text with sequence, labels and scores
        sorted by score (highest first)."""
        h = self._handle()
        single = isinstance(texts, str)
        seqs = [texts] if single else list(texts)
        labels = [candidate_labels] if isinstance(candidate_labels, str) else list(candidate_labels)
        t, kt = _strings(seqs)
        lab, kl = _strings(labels)
        scores = np.empty((len(seqs), len(labels)), dtype=np.float32)
        if seqs:
            _check(lib.mlxport_model_zero_shot(h, len(seqs), t, len(labels), lab, _b(hypothesis_template),
                                               int(bool(multi_label)),
                                               scores.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
        out = []
        for s, row in zip(seqs, scores):
            order = sorted(range(len(labels)), key=lambda j: (-row[j], j))
            out.append({"sequence": s, "labels": [labels[j] for j in order], "scores": [float(row[j]) for j in order]})
        return out[0] if single else out

    def token_embeddings(self, text):
        """Last hidden states of the text's tokens (special tokens included): [tokens, dim]."""
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.mlxport_model_token_embeddings(self._handle(), _b(text), ctypes.byref(p), ctypes.byref(n)))
        try:
            arr = np.ctypeslib.as_array(ctypes.cast(p, ctypes.POINTER(ctypes.c_float)), shape=(n.value, self.dim))
            return arr.copy()
        finally:
            lib.mlxport_free(p)


class Tokenizer:
    """Hugging Face-exact tokenizer of a model folder or cached repo id."""

    def __init__(self, path_or_repo):
        h = ctypes.c_void_p()
        _check(lib.mlxport_tokenizer_open(_b(path_or_repo), ctypes.byref(h)))
        self._h = h

    def close(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.mlxport_tokenizer_close(h)

    __del__ = close

    @staticmethod
    def _opts(add_special_tokens, max_length, truncation, padding):
        o = _lib.EncodeOptions()
        lib.mlxport_encode_options_init(ctypes.byref(o))
        o.add_special_tokens = int(bool(add_special_tokens))
        o.max_length = max_length or 0
        tr = {False: 0, None: 0, True: 1, "longest_first": 1, "only_first": 2, "only_second": 3}
        if truncation not in tr:
            raise ValueError(f"truncation must be one of {list(tr)}")
        o.truncation = tr[truncation]
        if padding not in ("longest", "max_length"):
            raise ValueError("padding must be 'longest' or 'max_length'")
        o.padding = 0 if padding == "longest" else 1
        return o

    def encode(self, text, pair=None, add_special_tokens=True, max_length=None, truncation=False):
        """Token ids of a text (or pair) as a list of ints."""
        o = self._opts(add_special_tokens, max_length, truncation, "longest")
        n = ctypes.c_size_t()
        cap = 4 * len(_b(text)) + 4 * len(_b(pair) or b"") + 16
        while True:
            buf = (ctypes.c_int32 * cap)()
            _check(lib.mlxport_tokenizer_encode(self._h, _b(text), _b(pair), ctypes.byref(o), buf, cap, ctypes.byref(n)))
            if n.value <= cap:
                return list(buf[:n.value])
            cap = n.value

    def encode_batch(self, texts, pairs=None, add_special_tokens=True, max_length=None, truncation=False,
                     padding="longest"):
        """Encodes a batch: dict of int32 arrays input_ids, attention_mask, token_type_ids [n, seq]."""
        o = self._opts(add_special_tokens, max_length, truncation, padding)
        t, kt = _strings(texts)
        p, kp = _strings(pairs) if pairs is not None else (None, None)
        e = ctypes.POINTER(_lib.Encoding)()
        _check(lib.mlxport_tokenizer_encode_batch(self._h, len(kt), t, p, ctypes.byref(o), ctypes.byref(e)))
        try:
            n, s = e.contents.n, e.contents.seq_len
            get = (lambda ptr: np.ctypeslib.as_array(ptr, shape=(n, s)).copy()) if n and s else (
                lambda ptr: np.zeros((n, s), dtype=np.int32))
            return {"input_ids": get(e.contents.input_ids), "attention_mask": get(e.contents.attention_mask),
                    "token_type_ids": get(e.contents.token_type_ids)}
        finally:
            lib.mlxport_encoding_free(e)

    def decode(self, ids, skip_special_tokens=True):
        arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        p = ctypes.c_void_p()
        _check(lib.mlxport_tokenizer_decode(self._h, arr, len(ids), int(bool(skip_special_tokens)), ctypes.byref(p)))
        try:
            return ctypes.string_at(p).decode("utf-8", "replace")
        finally:
            lib.mlxport_free(p)

    @property
    def vocab_size(self):
        return lib.mlxport_tokenizer_vocab_size(self._h)

    def token_to_id(self, token):
        i = lib.mlxport_tokenizer_token_to_id(self._h, _b(token))
        return None if i < 0 else i

    def id_to_token(self, i):
        s = lib.mlxport_tokenizer_id_to_token(self._h, i)
        return None if s is None else s.decode("utf-8", "replace")


def _take_string(p):
    try:
        return ctypes.string_at(p).decode("utf-8")
    finally:
        lib.mlxport_free(p)


def convert(source, output, *, quantize=False, bits=4, group_size=64, dtype=None, skip=(), force=False,
            dry_run=False, progress=None):
    """Converts a Hugging Face model (folder, weights file or cached repo id) into the MLX folder
    `output` (MLX affine quantization with quantize=True). progress(done, total, tensor_name) is
    called before each tensor. Returns the converter's summary (dict; "status" is "converted",
    "skipped" or "planned")."""
    o = _lib.ConvertOptions()
    lib.mlxport_convert_options_init(ctypes.byref(o))
    o.source, o.output, o.quantize, o.bits, o.group_size = _b(source), _b(output), int(bool(quantize)), bits, group_size
    o.dtype, o.force, o.dry_run = _b(dtype), int(bool(force)), int(bool(dry_run))
    skips, ks = _strings(list(skip))
    if ks:
        o.skip, o.n_skip = ctypes.cast(skips, ctypes.POINTER(ctypes.c_char_p)), len(ks)
    errors = []
    if progress is not None:
        def cb(user, done, total, name):
            try:
                progress(done, total, name.decode("utf-8", "replace"))
            except BaseException as e:  # never unwind through C: re-raised after the call
                errors.append(e)
        o.progress = _lib.PROGRESS_FN(cb)
    p = ctypes.c_void_p()
    st = lib.mlxport_convert(ctypes.byref(o), ctypes.byref(p))
    if errors:
        if p:
            lib.mlxport_free(p)
        raise errors[0]
    _check(st)
    return json.loads(_take_string(p))


def evaluate(model, dataset, *, baseline=None, task=None, max_samples=0, seed=42, batch_size=32, max_length=0,
             latency_requests=100, threads=0, compute="both", template=None, text_fields=None, label_field=None,
             score_field=None, label_names=None, data_file=None, data_dir=None, format=None,
             max_accuracy_drop=None, min_speedup=1.2, target_size_mb=None, name=None, in_process=False,
             update_card=False):
    """Evaluates `model` (and its `baseline` on the same examples) on a dataset (a built-in key such as
    "sst2", "snli", "stsb", or a file), as `mlxport eval --json`: task metric with a bootstrap
    interval, speed, latency, memory, the comparison and the gates. Returns the comparison
    document (dict); result["all_gates_passed"] tells the gates' outcome."""
    o = _lib.EvalOptions()
    lib.mlxport_eval_options_init(ctypes.byref(o))
    o.model, o.baseline, o.dataset, o.task = _b(model), _b(baseline), _b(dataset), _b(task)
    o.max_samples, o.seed, o.batch_size, o.max_length = max_samples, seed, batch_size, max_length
    o.latency_requests, o.threads, o.compute, o.template_ = latency_requests, threads, _b(compute), _b(template)
    if isinstance(text_fields, (list, tuple)):
        text_fields = ",".join(text_fields)
    if isinstance(label_names, (list, tuple)):
        label_names = ",".join(label_names)
    o.text_fields, o.label_field, o.score_field = _b(text_fields), _b(label_field), _b(score_field)
    o.label_names, o.data_file, o.data_dir, o.format = _b(label_names), _b(data_file), _b(data_dir), _b(format)
    o.max_accuracy_drop = math.nan if max_accuracy_drop is None else max_accuracy_drop
    o.min_speedup = 0 if min_speedup is None else min_speedup
    o.target_size_mb = math.nan if target_size_mb is None else target_size_mb
    o.name, o.in_process, o.update_card = _b(name), int(bool(in_process)), int(bool(update_card))
    p, passed = ctypes.c_void_p(), ctypes.c_int()
    _check(lib.mlxport_evaluate(ctypes.byref(o), ctypes.byref(p), ctypes.byref(passed)))
    doc = json.loads(_take_string(p))
    doc.setdefault("all_gates_passed", bool(passed.value))
    return doc
