/* PyTorch checkpoints read without executing anything.
 *
 * Two container layouts:
 *  - zip (torch >= 1.6): <prefix>/data.pkl (the pickle), <prefix>/data/<key> (raw storages),
 *    <prefix>/version, optionally <prefix>/byteorder ("little" | "big");
 *  - legacy (torch < 1.6 or _use_new_zipfile_serialization=False): five pickles back to back
 *    (magic number, protocol 1001, sys_info dict, the data pickle, the sorted list of storage
 *    keys) followed by each storage as an int64 element count and the raw little-endian bytes.
 *
 * The unpickler below is a data-only interpreter of the pickle opcodes a state dict uses.
 * GLOBAL / STACK_GLOBAL resolve only a fixed whitelist of names to inert tags; calls (REDUCE,
 * NEWOBJ) are interpreted for those tags only (OrderedDict(), _rebuild_tensor_v2(...), ...).
 * Any other global is refused at the moment it is named, with MP_ERR_SECURITY. */
#include "format/torch_pickle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "format/zip.h"

/* ------------------------------------------------------------------ limits */
#define PK_MAX_STACK (1u << 20)
#define PK_MAX_MARKS (1u << 20)
#define PK_MAX_MEMO (1u << 20)
#define PK_MAX_KEY_LEN 4096
#define PK_MAX_PICKLE ((uint64_t)1 << 31) /* data.pkl larger than 2 GiB is not a state dict */

/* ------------------------------------------------------------------ values */
typedef enum {
  V_NONE = 1,
  V_BOOL,
  V_INT,
  V_BIGINT, /* LONG1/LONG4 that does not fit int64: raw little-endian two's complement */
  V_FLOAT,
  V_STR,
  V_BYTES,
  V_TUPLE,
  V_LIST,
  V_DICT, /* items = k0, v0, k1, v1, ... */
  V_GLOBAL,
  V_STORAGE,
  V_TENSOR,
} vkind;

typedef enum {
  G_ORDERED_DICT = 1,
  G_REBUILD_TENSOR,          /* torch._utils._rebuild_tensor(storage, offset, size, stride) */
  G_REBUILD_TENSOR_V2,       /* (storage, offset, size, stride, requires_grad, hooks[, metadata]) */
  G_REBUILD_TENSOR_V3,       /* (storage, offset, size, stride, requires_grad, hooks, dtype[, metadata]) */
  G_REBUILD_PARAMETER,       /* (tensor, requires_grad, hooks) */
  G_REBUILD_PARAMETER_STATE, /* (tensor, requires_grad, hooks, state) */
  G_REBUILD_FROM_TYPE_V2,    /* torch._tensor._rebuild_from_type_v2(func, type, args, state) */
  G_TYPE_TENSOR,             /* torch.Tensor: only as the `type` argument above */
  G_TYPE_PARAMETER,          /* torch.nn.Parameter: same */
  G_STORAGE_TYPE,            /* torch.FloatStorage, ... (dtype in pval.dtype) */
  G_DTYPE,                   /* torch.float32, ... */
  G_SIZE,                    /* torch.Size(tuple) */
  G_CODECS_ENCODE,           /* _codecs.encode(str, "latin1"): how protocol 2 spells bytes */
} gid;

typedef struct ptensor {
  int64_t storage;              /* index in the loader's storage table */
  int64_t view_off, view_numel; /* legacy storage views (elements of the storage's dtype); numel -1: whole */
  mp_dtype storage_dtype;
  mp_dtype dtype;
  int64_t offset; /* elements of dtype */
  int ndim;
  int64_t shape[MP_MAX_DIMS], stride[MP_MAX_DIMS];
} ptensor;

typedef struct pval pval;
struct pval {
  uint8_t kind;
  uint8_t g;
  mp_dtype dtype;               /* GLOBAL storage type / dtype; STORAGE */
  int64_t i;                    /* INT, BOOL; STORAGE: storage index */
  int64_t view_off, view_numel; /* STORAGE (legacy views) */
  double f;
  const uint8_t *s; /* STR, BYTES, BIGINT; GLOBAL: "module.name" */
  size_t len;
  pval **items; /* TUPLE, LIST, DICT */
  size_t n, cap;
  ptensor *t;
};

typedef struct pstorage {
  const char *key;
  size_t key_len;
  uint64_t hash;
  mp_dtype dtype;
  int64_t numel;       /* from the persistent id */
  const uint8_t *data; /* NULL until known */
  uint64_t nbytes;     /* bytes usable */
  int have_data;
} pstorage;

typedef enum { MODE_CHECK, MODE_ZIP, MODE_LEGACY } lmode;

typedef struct loader {
  const char *what;
  mp_arena *arena; /* parse-time values */
  size_t arena_limit;
  lmode mode;
  int allow_pid;        /* the current pickle may contain persistent ids */
  uint64_t copy_budget; /* bytes left for contiguous copies of views */
  /* storage table + open-addressing hash over keys */
  pstorage *st;
  size_t nst, capst;
  int64_t *slots;
  size_t nslots;
  /* zip mode */
  const mp_zip *zip;
  const char *prefix;
  size_t prefix_len;
  void ***owned; /* inflated buffers to keep (owned by the torch file) */
  size_t *n_owned, *cap_owned;
  /* interpreter state (per pickle) */
  pval **stack;
  size_t sp, stack_cap;
  size_t *marks;
  size_t nmarks, marks_cap;
  pval **memo;
  size_t memo_cap, memo_count;
} loader;

static pval g_none = {.kind = V_NONE};

static const char *kind_name(int k) {
  switch (k) {
  case V_NONE: return "None";
  case V_BOOL: return "bool";
  case V_INT:
  case V_BIGINT: return "int";
  case V_FLOAT: return "float";
  case V_STR: return "str";
  case V_BYTES: return "bytes";
  case V_TUPLE: return "tuple";
  case V_LIST: return "list";
  case V_DICT: return "dict";
  case V_GLOBAL: return "global";
  case V_STORAGE: return "storage";
  case V_TENSOR: return "tensor";
  default: return "?";
  }
}

static pval *new_val(loader *L, int kind) {
  if (L->arena->used > L->arena_limit) return NULL;
  pval *v = mp_arena_alloc(L->arena, sizeof *v);
  if (v) v->kind = (uint8_t)kind;
  return v;
}

static mp_status oom(loader *L) {
  return mp_err(MP_ERR_NOMEM, "%s: the pickle needs more memory than a state dict could (limit %zu MiB); refusing it",
                L->what, L->arena_limit >> 20);
}

static mp_status items_push(loader *L, pval *c, pval *item) {
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 8;
    if (L->arena->used > L->arena_limit) return oom(L);
    pval **ni = mp_arena_alloc(L->arena, nc * sizeof *ni);
    if (!ni) return oom(L);
    if (c->n) memcpy(ni, c->items, c->n * sizeof *ni);
    c->items = ni;
    c->cap = nc;
  }
  c->items[c->n++] = item;
  return MP_OK;
}

/* ------------------------------------------------------------------ whitelist */
typedef struct {
  const char *module, *name;
  gid g;
  mp_dtype dtype;
} gentry;

static const gentry k_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, 0},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, 0},
    {"torch._utils", "_rebuild_tensor_v3", G_REBUILD_TENSOR_V3, 0},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE, 0},
    {"torch._tensor", "_rebuild_from_type_v2", G_REBUILD_FROM_TYPE_V2, 0},
    {"torch.tensor", "_rebuild_from_type_v2", G_REBUILD_FROM_TYPE_V2, 0}, /* torch maps torch.tensor -> _tensor */
    {"torch._tensor", "Tensor", G_TYPE_TENSOR, 0},
    {"torch", "Tensor", G_TYPE_TENSOR, 0},
    {"torch.nn.parameter", "Parameter", G_TYPE_PARAMETER, 0},
    {"torch", "Size", G_SIZE, 0},
    {"_codecs", "encode", G_CODECS_ENCODE, 0},
    {"torch", "FloatStorage", G_STORAGE_TYPE, MP_F32},
    {"torch", "DoubleStorage", G_STORAGE_TYPE, MP_F64},
    {"torch", "HalfStorage", G_STORAGE_TYPE, MP_F16},
    {"torch", "BFloat16Storage", G_STORAGE_TYPE, MP_BF16},
    {"torch", "LongStorage", G_STORAGE_TYPE, MP_I64},
    {"torch", "IntStorage", G_STORAGE_TYPE, MP_I32},
    {"torch", "ShortStorage", G_STORAGE_TYPE, MP_I16},
    {"torch", "CharStorage", G_STORAGE_TYPE, MP_I8},
    {"torch", "ByteStorage", G_STORAGE_TYPE, MP_U8},
    {"torch", "BoolStorage", G_STORAGE_TYPE, MP_BOOL},
    {"torch", "UntypedStorage", G_STORAGE_TYPE, MP_U8},
    {"torch", "float32", G_DTYPE, MP_F32},
    {"torch", "float", G_DTYPE, MP_F32},
    {"torch", "float64", G_DTYPE, MP_F64},
    {"torch", "double", G_DTYPE, MP_F64},
    {"torch", "float16", G_DTYPE, MP_F16},
    {"torch", "half", G_DTYPE, MP_F16},
    {"torch", "bfloat16", G_DTYPE, MP_BF16},
    {"torch", "int64", G_DTYPE, MP_I64},
    {"torch", "long", G_DTYPE, MP_I64},
    {"torch", "int32", G_DTYPE, MP_I32},
    {"torch", "int", G_DTYPE, MP_I32},
    {"torch", "int16", G_DTYPE, MP_I16},
    {"torch", "short", G_DTYPE, MP_I16},
    {"torch", "int8", G_DTYPE, MP_I8},
    {"torch", "uint8", G_DTYPE, MP_U8},
    {"torch", "bool", G_DTYPE, MP_BOOL},
};

/* Known torch names that are harmless in torch but describe tensors mlxport cannot represent. */
static const struct {
  const char *module, *name, *why;
} k_unsupported[] = {
    {"torch._utils", "_rebuild_qtensor", "quantized tensors"},
    {"torch._utils", "_rebuild_sparse_tensor", "sparse tensors"},
    {"torch._utils", "_rebuild_sparse_csr_tensor", "sparse CSR tensors"},
    {"torch._utils", "_rebuild_meta_tensor_no_storage", "meta tensors (no data)"},
    {"torch._utils", "_rebuild_wrapper_subclass", "tensor subclasses"},
    {"torch._utils", "_rebuild_device_tensor_from_numpy", "device tensors saved through numpy"},
    {"torch._utils", "_rebuild_nested_tensor", "nested tensors"},
    {"torch", "ComplexFloatStorage", "complex64 storages"},
    {"torch", "ComplexDoubleStorage", "complex128 storages"},
    {"torch", "QInt8Storage", "quantized storages"},
    {"torch", "QUInt8Storage", "quantized storages"},
    {"torch", "QInt32Storage", "quantized storages"},
    {"torch", "QUInt4x2Storage", "quantized storages"},
    {"torch", "QUInt2x4Storage", "quantized storages"},
};

static int streq(const uint8_t *s, size_t n, const char *lit) { return strlen(lit) == n && memcmp(s, lit, n) == 0; }

/* Printable copy of an untrusted name for messages. */
static void printable(char *dst, size_t cap, const uint8_t *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 5 < cap; i++) {
    uint8_t c = s[i];
    if (c >= 0x20 && c < 0x7f && c != '\'')
      dst[o++] = (char)c;
    else
      o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
  }
  if (n && o + 5 >= cap && o + 3 < cap) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o] = 0;
}

static mp_status resolve_global(loader *L, const uint8_t *mod, size_t mlen, const uint8_t *name, size_t nlen,
                                pval **out) {
  /* torch.cuda.<X>Storage: what old CUDA checkpoints name; the bytes are the same */
  const uint8_t *m = mod;
  size_t ml = mlen;
  if (streq(mod, mlen, "torch.cuda") && nlen > 7 && memcmp(name + nlen - 7, "Storage", 7) == 0) {
    m = (const uint8_t *)"torch";
    ml = 5;
  }
  for (size_t i = 0; i < sizeof k_globals / sizeof k_globals[0]; i++) {
    if (streq(m, ml, k_globals[i].module) && streq(name, nlen, k_globals[i].name)) {
      pval *v = new_val(L, V_GLOBAL);
      if (!v) return oom(L);
      v->g = (uint8_t)k_globals[i].g;
      v->dtype = k_globals[i].dtype;
      v->s = (const uint8_t *)k_globals[i].name;
      v->len = strlen(k_globals[i].name);
      *out = v;
      return MP_OK;
    }
  }
  char pm[160], pn[160];
  printable(pm, sizeof pm, mod, mlen);
  printable(pn, sizeof pn, name, nlen);
  for (size_t i = 0; i < sizeof k_unsupported / sizeof k_unsupported[0]; i++)
    if (streq(mod, mlen, k_unsupported[i].module) && streq(name, nlen, k_unsupported[i].name))
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s: the checkpoint contains %s ('%s.%s'), which mlxport does not support; save a plain "
                    "state dict of dense tensors",
                    L->what, k_unsupported[i].why, pm, pn);
  return mp_err(MP_ERR_SECURITY,
                "%s: refusing pickle global '%s.%s': it is not part of a plain PyTorch state dict, and unpickling it "
                "could execute code (mlxport never executes pickles). If you trust this file, convert it to "
                "safetensors with Python (torch.load + safetensors.torch.save_file) and use that instead",
                L->what, pm, pn);
}

/* ------------------------------------------------------------------ storages */
static uint64_t hash_bytes(const void *p, size_t n) {
  const uint8_t *s = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

static int64_t storage_find(const loader *L, const uint8_t *key, size_t klen, uint64_t h) {
  if (!L->nslots) return -1;
  for (size_t i = h & (L->nslots - 1);; i = (i + 1) & (L->nslots - 1)) {
    int64_t s = L->slots[i];
    if (s < 0) return -1;
    const pstorage *p = &L->st[s];
    if (p->hash == h && p->key_len == klen && memcmp(p->key, key, klen) == 0) return s;
  }
}

static mp_status storage_add(loader *L, const uint8_t *key, size_t klen, uint64_t h, mp_dtype dtype, int64_t numel,
                             int64_t *out) {
  if (L->nst == L->capst) {
    size_t nc = L->capst ? L->capst * 2 : 64;
    pstorage *ns = realloc(L->st, nc * sizeof *ns);
    if (!ns) return oom(L);
    L->st = ns;
    L->capst = nc;
  }
  if ((L->nst + 1) * 2 > L->nslots) {
    size_t nn = L->nslots ? L->nslots * 2 : 128;
    int64_t *sl = malloc(nn * sizeof *sl);
    if (!sl) return oom(L);
    for (size_t i = 0; i < nn; i++)
      sl[i] = -1;
    for (size_t s = 0; s < L->nst; s++) {
      size_t i = L->st[s].hash & (nn - 1);
      while (sl[i] >= 0)
        i = (i + 1) & (nn - 1);
      sl[i] = (int64_t)s;
    }
    free(L->slots);
    L->slots = sl;
    L->nslots = nn;
  }
  char *k = mp_arena_strndup(L->arena, (const char *)key, klen);
  if (!k) return oom(L);
  pstorage *p = &L->st[L->nst];
  memset(p, 0, sizeof *p);
  p->key = k;
  p->key_len = klen;
  p->hash = h;
  p->dtype = dtype;
  p->numel = numel;
  size_t i = h & (L->nslots - 1);
  while (L->slots[i] >= 0)
    i = (i + 1) & (L->nslots - 1);
  L->slots[i] = (int64_t)L->nst;
  *out = (int64_t)L->nst++;
  return MP_OK;
}

static mp_status owned_push(loader *L, void *p) {
  if (*L->n_owned == *L->cap_owned) {
    size_t nc = *L->cap_owned ? *L->cap_owned * 2 : 16;
    void **no = realloc(*L->owned, nc * sizeof *no);
    if (!no) {
      free(p);
      return oom(L);
    }
    *L->owned = no;
    *L->cap_owned = nc;
  }
  (*L->owned)[(*L->n_owned)++] = p;
  return MP_OK;
}

/* zip mode: the record <prefix>/data/<key> */
static mp_status zip_load_storage(loader *L, pstorage *p) {
  char kp[PK_MAX_KEY_LEN + 1];
  printable(kp, sizeof kp, (const uint8_t *)p->key, p->key_len);
  if (memchr(p->key, 0, p->key_len))
    return mp_err(MP_ERR_FORMAT, "%s: storage key '%s' contains a NUL byte", L->what, kp);
  size_t nlen = L->prefix_len + 6 + p->key_len;
  char *name = malloc(nlen + 1);
  if (!name) return oom(L);
  memcpy(name, L->prefix, L->prefix_len);
  memcpy(name + L->prefix_len, "/data/", 6);
  memcpy(name + L->prefix_len + 6, p->key, p->key_len);
  name[nlen] = 0;
  const mp_zip_entry *e = mp_zip_find(L->zip, name);
  free(name);
  if (!e)
    return mp_err(MP_ERR_FORMAT,
                  "%s: storage '%s' is referenced by the pickle but the archive has no record '%.*s/data/%s'", L->what,
                  kp, (int)L->prefix_len, L->prefix, kp);
  const uint8_t *d;
  size_t sz;
  void *own;
  MP_TRY(mp_zip_read(L->zip, e, 0, 0, &d, &sz, &own));
  if (own) MP_TRY(owned_push(L, own));
  uint64_t want = (uint64_t)p->numel * mp_dtype_size(p->dtype);
  if (sz < want)
    return mp_err(MP_ERR_FORMAT,
                  "%s: storage '%s' should hold %lld elements of %s (%llu bytes) but its record has %zu bytes; the "
                  "file is truncated or corrupt",
                  L->what, kp, (long long)p->numel, mp_dtype_name(p->dtype), (unsigned long long)want, sz);
  p->data = d;
  p->nbytes = want;
  p->have_data = 1;
  return MP_OK;
}

static int as_int(const pval *v, int64_t *out) {
  if (v->kind == V_INT || v->kind == V_BOOL) {
    *out = v->i;
    return 1;
  }
  return 0;
}

/* persistent_load: ('storage', storage_type, key, location, numel) in zip files; legacy files
 * add a sixth element, view_metadata (None or (view_key, offset, view_size)). */
static mp_status persistent_load(loader *L, pval *pid, pval **out) {
  if (!L->allow_pid)
    return mp_err(MP_ERR_FORMAT, "%s: unexpected persistent id in a pickle that cannot reference storages", L->what);
  if (pid->kind != V_TUPLE || pid->n < 5 || pid->n > 6 ||
      !(pid->items[0]->kind == V_STR || pid->items[0]->kind == V_BYTES) ||
      !streq(pid->items[0]->s, pid->items[0]->len, "storage"))
    return mp_err(MP_ERR_FORMAT,
                  "%s: malformed persistent id (expected ('storage', <storage type>, key, location, numel)); the "
                  "file is corrupt or was not written by torch.save",
                  L->what);
  if ((L->mode == MODE_ZIP && pid->n != 5) || (L->mode == MODE_LEGACY && pid->n != 6))
    return mp_err(MP_ERR_FORMAT, "%s: persistent id has %zu fields, which does not match the %s layout", L->what,
                  pid->n, L->mode == MODE_ZIP ? "zip" : "legacy");
  pval *ty = pid->items[1], *key = pid->items[2], *loc = pid->items[3], *num = pid->items[4];
  int64_t numel;
  if (ty->kind != V_GLOBAL || ty->g != G_STORAGE_TYPE)
    return mp_err(MP_ERR_FORMAT, "%s: persistent id names a %s where a storage type (e.g. torch.FloatStorage) belongs",
                  L->what, kind_name(ty->kind));
  if (key->kind != V_STR && key->kind != V_BYTES)
    return mp_err(MP_ERR_FORMAT, "%s: persistent id has a %s storage key (expected a string)", L->what,
                  kind_name(key->kind));
  if (key->len == 0 || key->len > PK_MAX_KEY_LEN)
    return mp_err(MP_ERR_FORMAT, "%s: persistent id storage key has %zu bytes (expected 1..%d)", L->what, key->len,
                  PK_MAX_KEY_LEN);
  if (loc->kind != V_STR && loc->kind != V_BYTES)
    return mp_err(MP_ERR_FORMAT, "%s: persistent id has a %s location (expected a string such as 'cpu')", L->what,
                  kind_name(loc->kind));
  size_t es = mp_dtype_size(ty->dtype);
  if (!as_int(num, &numel) || numel < 0 || (uint64_t)numel > (UINT64_MAX >> 2) / es)
    return mp_err(MP_ERR_FORMAT, "%s: persistent id has an invalid element count (%s)", L->what, kind_name(num->kind));
  int64_t view_off = 0, view_numel = -1;
  if (pid->n == 6 && pid->items[5]->kind != V_NONE) {
    pval *vm = pid->items[5];
    int64_t o, vn;
    if (vm->kind != V_TUPLE || vm->n != 3 || !as_int(vm->items[1], &o) || !as_int(vm->items[2], &vn) || o < 0 ||
        vn < 0 || o > numel || vn > numel - o)
      return mp_err(MP_ERR_FORMAT, "%s: malformed storage view metadata in a persistent id", L->what);
    view_off = o;
    view_numel = vn;
  }
  uint64_t h = hash_bytes(key->s, key->len);
  int64_t si = storage_find(L, key->s, key->len, h);
  if (si < 0) {
    MP_TRY(storage_add(L, key->s, key->len, h, ty->dtype, numel, &si));
    if (L->mode == MODE_ZIP) MP_TRY(zip_load_storage(L, &L->st[si]));
  }
  pval *v = new_val(L, V_STORAGE);
  if (!v) return oom(L);
  v->i = si;
  v->dtype = ty->dtype;
  v->view_off = view_off;
  v->view_numel = view_numel;
  *out = v;
  return MP_OK;
}

/* ------------------------------------------------------------------ calls */
static mp_status int_tuple(loader *L, const pval *v, const char *what_arg, int64_t *dst, int *ndim) {
  if (v->kind != V_TUPLE && v->kind != V_LIST)
    return mp_err(MP_ERR_FORMAT, "%s: tensor %s is a %s, expected a tuple of ints", L->what, what_arg,
                  kind_name(v->kind));
  if (v->n > MP_MAX_DIMS)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: tensor has %zu dimensions (mlxport supports up to %d)", L->what, v->n,
                  MP_MAX_DIMS);
  for (size_t i = 0; i < v->n; i++)
    if (v->items[i]->kind != V_INT || v->items[i]->i < 0)
      return mp_err(MP_ERR_FORMAT, "%s: tensor %s[%zu] is not a non-negative int", L->what, what_arg, i);
    else
      dst[i] = v->items[i]->i;
  *ndim = (int)v->n;
  return MP_OK;
}

static mp_status rebuild_tensor(loader *L, pval *const *a, size_t n, mp_dtype override, pval **out) {
  pval *st = a[0];
  int64_t off;
  if (st->kind != V_STORAGE)
    return mp_err(MP_ERR_FORMAT, "%s: _rebuild_tensor got a %s where a storage (persistent id) belongs", L->what,
                  kind_name(st->kind));
  if (!as_int(a[1], &off) || off < 0)
    return mp_err(MP_ERR_FORMAT, "%s: _rebuild_tensor got an invalid storage offset", L->what);
  ptensor *t = mp_arena_alloc(L->arena, sizeof *t);
  if (!t) return oom(L);
  int nd_size, nd_stride;
  MP_TRY(int_tuple(L, a[2], "size", t->shape, &nd_size));
  MP_TRY(int_tuple(L, a[3], "stride", t->stride, &nd_stride));
  if (nd_size != nd_stride)
    return mp_err(MP_ERR_FORMAT, "%s: tensor size has %d dimensions but stride has %d", L->what, nd_size, nd_stride);
  (void)n;
  t->ndim = nd_size;
  t->storage = st->i;
  t->view_off = st->view_off;
  t->view_numel = st->view_numel;
  t->storage_dtype = st->dtype;
  t->dtype = override ? override : st->dtype;
  t->offset = off;
  pval *v = new_val(L, V_TENSOR);
  if (!v) return oom(L);
  v->t = t;
  *out = v;
  return MP_OK;
}

static mp_status call(loader *L, pval *fn, pval *args, int depth, pval **out) {
  if (fn->kind != V_GLOBAL)
    return mp_err(MP_ERR_FORMAT, "%s: pickle calls a %s (only whitelisted globals are callable)", L->what,
                  kind_name(fn->kind));
  if (args->kind != V_TUPLE)
    return mp_err(MP_ERR_FORMAT, "%s: pickle call of '%.*s' with a %s instead of an argument tuple", L->what,
                  (int)fn->len, (const char *)fn->s, kind_name(args->kind));
  pval *const *a = args->items;
  size_t n = args->n;
  switch ((gid)fn->g) {
  case G_ORDERED_DICT:
    if (n != 0) break;
    *out = new_val(L, V_DICT);
    return *out ? MP_OK : oom(L);
  case G_REBUILD_TENSOR:
    if (n != 4) break;
    return rebuild_tensor(L, a, n, 0, out);
  case G_REBUILD_TENSOR_V2:
    if (n != 6 && n != 7) break;
    return rebuild_tensor(L, a, n, 0, out);
  case G_REBUILD_TENSOR_V3:
    if (n != 7 && n != 8) break;
    if (a[6]->kind != V_GLOBAL || a[6]->g != G_DTYPE)
      return mp_err(MP_ERR_FORMAT, "%s: _rebuild_tensor_v3 dtype argument is a %s", L->what, kind_name(a[6]->kind));
    return rebuild_tensor(L, a, n, a[6]->dtype, out);
  case G_REBUILD_PARAMETER:
  case G_REBUILD_PARAMETER_STATE:
    if (n != (fn->g == G_REBUILD_PARAMETER ? 3u : 4u)) break;
    if (a[0]->kind != V_TENSOR)
      return mp_err(MP_ERR_FORMAT, "%s: _rebuild_parameter got a %s instead of a tensor", L->what,
                    kind_name(a[0]->kind));
    *out = a[0];
    return MP_OK;
  case G_REBUILD_FROM_TYPE_V2:
    if (n != 4) break;
    if (depth > 0) return mp_err(MP_ERR_FORMAT, "%s: nested _rebuild_from_type_v2 calls", L->what);
    if (a[1]->kind != V_GLOBAL || (a[1]->g != G_TYPE_TENSOR && a[1]->g != G_TYPE_PARAMETER))
      return mp_err(MP_ERR_UNSUPPORTED, "%s: _rebuild_from_type_v2 with a type other than Tensor/Parameter", L->what);
    MP_TRY(call(L, a[0], a[2], depth + 1, out));
    if ((*out)->kind != V_TENSOR)
      return mp_err(MP_ERR_FORMAT, "%s: _rebuild_from_type_v2 did not rebuild a tensor", L->what);
    return MP_OK;
  case G_SIZE:
    if (n != 1 || (a[0]->kind != V_TUPLE && a[0]->kind != V_LIST)) break;
    *out = a[0];
    return MP_OK;
  case G_CODECS_ENCODE: {
    if (n != 2 || a[0]->kind != V_STR || a[1]->kind != V_STR ||
        !(streq(a[1]->s, a[1]->len, "latin1") || streq(a[1]->s, a[1]->len, "latin-1")))
      break;
    /* UTF-8 code points < 256 -> bytes */
    uint8_t *b = mp_arena_alloc(L->arena, a[0]->len + 1);
    if (!b) return oom(L);
    size_t o = 0;
    for (size_t i = 0; i < a[0]->len;) {
      uint8_t c = a[0]->s[i];
      if (c < 0x80) {
        b[o++] = c;
        i++;
      } else if ((c & 0xE0) == 0xC0 && c <= 0xC3 && i + 1 < a[0]->len && (a[0]->s[i + 1] & 0xC0) == 0x80) {
        b[o++] = (uint8_t)(((c & 0x1F) << 6) | (a[0]->s[i + 1] & 0x3F));
        i += 2;
      } else {
        return mp_err(MP_ERR_FORMAT, "%s: _codecs.encode of a string that is not latin-1", L->what);
      }
    }
    pval *v = new_val(L, V_BYTES);
    if (!v) return oom(L);
    v->s = b;
    v->len = o;
    *out = v;
    return MP_OK;
  }
  case G_TYPE_TENSOR:
  case G_TYPE_PARAMETER:
  case G_STORAGE_TYPE:
  case G_DTYPE:
    return mp_err(MP_ERR_UNSUPPORTED, "%s: pickle constructs '%.*s' directly, which a state dict never does", L->what,
                  (int)fn->len, (const char *)fn->s);
  }
  return mp_err(MP_ERR_FORMAT, "%s: pickle calls '%.*s' with %zu unexpected arguments", L->what, (int)fn->len,
                (const char *)fn->s, n);
}

/* ------------------------------------------------------------------ interpreter */
static mp_status push(loader *L, pval *v) {
  if (!v) return oom(L);
  if (L->sp == L->stack_cap) {
    if (L->stack_cap >= PK_MAX_STACK)
      return mp_err(MP_ERR_FORMAT, "%s: pickle stack deeper than %u entries; refusing it", L->what, PK_MAX_STACK);
    size_t nc = L->stack_cap ? L->stack_cap * 2 : 256;
    pval **ns = realloc(L->stack, nc * sizeof *ns);
    if (!ns) return oom(L);
    L->stack = ns;
    L->stack_cap = nc;
  }
  L->stack[L->sp++] = v;
  return MP_OK;
}

static size_t floor_sp(const loader *L) { return L->nmarks ? L->marks[L->nmarks - 1] : 0; }

static mp_status underflow(loader *L, const char *op, size_t pos) {
  return mp_err(MP_ERR_FORMAT, "%s: pickle opcode %s at byte %zu needs more stack items than there are; corrupt pickle",
                L->what, op, pos);
}

static mp_status pop_mark(loader *L, const char *op, size_t pos, size_t *mark) {
  if (!L->nmarks)
    return mp_err(MP_ERR_FORMAT, "%s: pickle opcode %s at byte %zu without a MARK; corrupt pickle", L->what, op, pos);
  *mark = L->marks[--L->nmarks];
  return MP_OK;
}

static mp_status memo_put(loader *L, uint64_t idx, size_t pos) {
  if (L->sp == floor_sp(L)) return underflow(L, "PUT", pos);
  if (idx >= PK_MAX_MEMO)
    return mp_err(MP_ERR_FORMAT, "%s: pickle memo index %llu at byte %zu exceeds the limit %u", L->what,
                  (unsigned long long)idx, pos, PK_MAX_MEMO);
  if (idx >= L->memo_cap) {
    size_t nc = L->memo_cap ? L->memo_cap : 256;
    while (nc <= idx)
      nc *= 2;
    pval **nm = realloc(L->memo, nc * sizeof *nm);
    if (!nm) return oom(L);
    memset(nm + L->memo_cap, 0, (nc - L->memo_cap) * sizeof *nm);
    L->memo = nm;
    L->memo_cap = nc;
  }
  if (!L->memo[idx]) L->memo_count++;
  L->memo[idx] = L->stack[L->sp - 1];
  return MP_OK;
}

static mp_status memo_get(loader *L, uint64_t idx, size_t pos) {
  if (idx >= L->memo_cap || !L->memo[idx])
    return mp_err(MP_ERR_FORMAT, "%s: pickle refers to memo entry %llu at byte %zu, which was never stored", L->what,
                  (unsigned long long)idx, pos);
  return push(L, L->memo[idx]);
}

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* Reads a '\n'-terminated line (text opcodes). */
static mp_status read_line(loader *L, const uint8_t *p, size_t n, size_t *i, const uint8_t **s, size_t *len) {
  const uint8_t *nl = memchr(p + *i, '\n', n - *i);
  if (!nl) return mp_err(MP_ERR_FORMAT, "%s: pickle truncated inside a text opcode", L->what);
  *s = p + *i;
  *len = (size_t)(nl - (p + *i));
  *i += *len + 1;
  return MP_OK;
}

static int parse_dec(const uint8_t *s, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (n && s[n - 1] == 'L') n--; /* protocol 0 long */
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == n || n - i > 18) return 0;
  int64_t v = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = neg ? -v : v;
  return 1;
}

static mp_status make_str(loader *L, int kind, const uint8_t *s, size_t len) {
  pval *v = new_val(L, kind);
  if (!v) return oom(L);
  v->s = s;
  v->len = len;
  return push(L, v);
}

static mp_status make_long(loader *L, const uint8_t *s, size_t len) {
  if (len <= 8) {
    pval *v = new_val(L, V_INT);
    if (!v) return oom(L);
    uint64_t u = len ? le(s, (int)len) : 0;
    if (len && len < 8 && (s[len - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * len); /* sign-extend */
    v->i = (int64_t)u;
    return push(L, v);
  }
  return make_str(L, V_BIGINT, s, len);
}

static mp_status build_tuple(loader *L, size_t from, pval **out) {
  pval *t = new_val(L, V_TUPLE);
  if (!t) return oom(L);
  size_t n = L->sp - from;
  if (n) {
    t->items = mp_arena_alloc(L->arena, n * sizeof *t->items);
    if (!t->items) return oom(L);
    memcpy(t->items, L->stack + from, n * sizeof *t->items);
  }
  t->n = t->cap = n;
  L->sp = from;
  *out = t;
  return MP_OK;
}

#define NEED(k)                                                                                                        \
  do {                                                                                                                 \
    if (n - i < (size_t)(k))                                                                                           \
      return mp_err(MP_ERR_FORMAT,                                                                                     \
                    "%s: pickle truncated at byte %zu (opcode 0x%02x needs %zu more bytes); the file is "              \
                    "incomplete",                                                                                      \
                    L->what, i, op, (size_t)(k));                                                                      \
  } while (0)
#define NEED_STACK(k, name)                                                                                            \
  do {                                                                                                                 \
    if (L->sp - floor_sp(L) < (size_t)(k)) return underflow(L, name, pos);                                             \
  } while (0)

/* Runs one pickle from p[0..n); *consumed = bytes up to and including STOP. */
static mp_status unpickle(loader *L, const uint8_t *p, size_t n, size_t *consumed, pval **result) {
  L->sp = 0;
  L->nmarks = 0;
  if (L->memo) memset(L->memo, 0, L->memo_cap * sizeof *L->memo);
  L->memo_count = 0;
  size_t i = 0;
  for (;;) {
    if (i >= n)
      return mp_err(MP_ERR_FORMAT, "%s: pickle ends at byte %zu without a STOP opcode; the file is truncated", L->what,
                    i);
    size_t pos = i;
    uint8_t op = p[i++];
    mp_status s = MP_OK;
    switch (op) {
    case 0x80: /* PROTO */
      NEED(1);
      if (p[i] > 5)
        return mp_err(MP_ERR_UNSUPPORTED, "%s: pickle protocol %u is newer than 5", L->what, (unsigned)p[i]);
      i += 1;
      break;
    case 0x95: /* FRAME: length only, the frame's opcodes follow inline */
      NEED(8);
      if (le(p + i, 8) > n - i - 8)
        return mp_err(MP_ERR_FORMAT, "%s: pickle frame at byte %zu runs past the end; truncated file", L->what, pos);
      i += 8;
      break;
    case '.': /* STOP */
      if (L->sp == 0) return underflow(L, "STOP", pos);
      *result = L->stack[L->sp - 1];
      *consumed = i;
      return MP_OK;
    case '(': /* MARK */
      if (L->nmarks == L->marks_cap) {
        if (L->marks_cap >= PK_MAX_MARKS)
          return mp_err(MP_ERR_FORMAT, "%s: more than %u nested pickle MARKs", L->what, PK_MAX_MARKS);
        size_t nc = L->marks_cap ? L->marks_cap * 2 : 64;
        size_t *nm = realloc(L->marks, nc * sizeof *nm);
        if (!nm) return oom(L);
        L->marks = nm;
        L->marks_cap = nc;
      }
      L->marks[L->nmarks++] = L->sp;
      break;
    case '0': /* POP: the top item, or the mark itself when nothing follows it */
      if (L->sp > floor_sp(L))
        L->sp--;
      else if (L->nmarks)
        L->nmarks--;
      else
        return underflow(L, "POP", pos);
      break;
    case '1': { /* POP_MARK */
      size_t m = 0;
      MP_TRY(pop_mark(L, "POP_MARK", pos, &m));
      L->sp = m;
      break;
    }
    case '2': /* DUP */
      NEED_STACK(1, "DUP");
      s = push(L, L->stack[L->sp - 1]);
      break;
    case 'N': s = push(L, &g_none); break;
    case 0x88:   /* NEWTRUE */
    case 0x89: { /* NEWFALSE */
      pval *v = new_val(L, V_BOOL);
      if (v) v->i = op == 0x88;
      s = push(L, v);
      break;
    }
    case 'J': { /* BININT */
      NEED(4);
      pval *v = new_val(L, V_INT);
      if (v) v->i = (int32_t)(uint32_t)le(p + i, 4);
      i += 4;
      s = push(L, v);
      break;
    }
    case 'K': { /* BININT1 */
      NEED(1);
      pval *v = new_val(L, V_INT);
      if (v) v->i = p[i];
      i += 1;
      s = push(L, v);
      break;
    }
    case 'M': { /* BININT2 */
      NEED(2);
      pval *v = new_val(L, V_INT);
      if (v) v->i = (int64_t)le(p + i, 2);
      i += 2;
      s = push(L, v);
      break;
    }
    case 0x8a: { /* LONG1 */
      NEED(1);
      size_t len = p[i++];
      NEED(len);
      s = make_long(L, p + i, len);
      i += len;
      break;
    }
    case 0x8b: { /* LONG4 */
      NEED(4);
      int32_t len = (int32_t)(uint32_t)le(p + i, 4);
      i += 4;
      if (len < 0) return mp_err(MP_ERR_FORMAT, "%s: negative LONG4 length at byte %zu", L->what, pos);
      NEED((size_t)len);
      s = make_long(L, p + i, (size_t)len);
      i += (size_t)len;
      break;
    }
    case 'I':   /* INT (text) */
    case 'L': { /* LONG (text) */
      const uint8_t *ln = NULL;
      size_t len = 0;
      int64_t v64;
      MP_TRY(read_line(L, p, n, &i, &ln, &len));
      pval *v;
      if (op == 'I' && len == 2 && ln[0] == '0' && (ln[1] == '0' || ln[1] == '1')) {
        v = new_val(L, V_BOOL);
        if (v) v->i = ln[1] == '1';
      } else {
        if (!parse_dec(ln, len, &v64))
          return mp_err(MP_ERR_FORMAT, "%s: bad or out-of-range text integer at byte %zu", L->what, pos);
        v = new_val(L, V_INT);
        if (v) v->i = v64;
      }
      s = push(L, v);
      break;
    }
    case 'G': { /* BINFLOAT: big-endian double */
      NEED(8);
      uint64_t u = 0;
      for (int k = 0; k < 8; k++)
        u = (u << 8) | p[i + k];
      i += 8;
      pval *v = new_val(L, V_FLOAT);
      if (v) memcpy(&v->f, &u, 8);
      s = push(L, v);
      break;
    }
    case 'F': { /* FLOAT (text) */
      const uint8_t *ln = NULL;
      size_t len = 0;
      char buf[64];
      MP_TRY(read_line(L, p, n, &i, &ln, &len));
      if (len == 0 || len >= sizeof buf) return mp_err(MP_ERR_FORMAT, "%s: bad text float at byte %zu", L->what, pos);
      memcpy(buf, ln, len);
      buf[len] = 0;
      char *end;
      double d = strtod(buf, &end);
      if (*end) return mp_err(MP_ERR_FORMAT, "%s: bad text float at byte %zu", L->what, pos);
      pval *v = new_val(L, V_FLOAT);
      if (v) v->f = d;
      s = push(L, v);
      break;
    }
    case 'S':   /* STRING (text, quoted; escapes kept verbatim: only names and keys matter here) */
    case 'V': { /* UNICODE (text, raw-unicode-escape; kept verbatim) */
      const uint8_t *ln = NULL;
      size_t len = 0;
      MP_TRY(read_line(L, p, n, &i, &ln, &len));
      if (op == 'S') {
        if (len < 2 || (ln[0] != '\'' && ln[0] != '"') || ln[len - 1] != ln[0])
          return mp_err(MP_ERR_FORMAT, "%s: badly quoted STRING at byte %zu", L->what, pos);
        ln++;
        len -= 2;
      }
      s = make_str(L, V_STR, ln, len);
      break;
    }
    case 'X':    /* BINUNICODE */
    case 'T':    /* BINSTRING */
    case 'B':    /* BINBYTES */
    case 0x8c:   /* SHORT_BINUNICODE */
    case 'U':    /* SHORT_BINSTRING */
    case 'C':    /* SHORT_BINBYTES */
    case 0x8d:   /* BINUNICODE8 */
    case 0x8e:   /* BINBYTES8 */
    case 0x96: { /* BYTEARRAY8 */
      int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
      NEED(w);
      uint64_t len = le(p + i, w);
      i += (size_t)w;
      if (op == 'T' && (int32_t)(uint32_t)len < 0)
        return mp_err(MP_ERR_FORMAT, "%s: negative string length at byte %zu", L->what, pos);
      if (len > n - i)
        return mp_err(MP_ERR_FORMAT, "%s: string of %llu bytes at byte %zu runs past the end of the pickle", L->what,
                      (unsigned long long)len, pos);
      int kind = (op == 'B' || op == 'C' || op == 0x8e || op == 0x96) ? V_BYTES : V_STR;
      s = make_str(L, kind, p + i, (size_t)len);
      i += (size_t)len;
      break;
    }
    case ')': { /* EMPTY_TUPLE */
      pval *v = new_val(L, V_TUPLE);
      s = push(L, v);
      break;
    }
    case 0x85:   /* TUPLE1 */
    case 0x86:   /* TUPLE2 */
    case 0x87: { /* TUPLE3 */
      size_t k = (size_t)(op - 0x84);
      NEED_STACK(k, "TUPLEn");
      pval *t = NULL;
      MP_TRY(build_tuple(L, L->sp - k, &t));
      s = push(L, t);
      break;
    }
    case 't': { /* TUPLE */
      size_t m = 0;
      pval *t = NULL;
      MP_TRY(pop_mark(L, "TUPLE", pos, &m));
      MP_TRY(build_tuple(L, m, &t));
      s = push(L, t);
      break;
    }
    case ']': /* EMPTY_LIST */
    case 0x8f: /* EMPTY_SET (kept as a list) */ s = push(L, new_val(L, V_LIST)); break;
    case '}': s = push(L, new_val(L, V_DICT)); break; /* EMPTY_DICT */
    case 'l':                                         /* LIST */
    case 0x91:                                        /* FROZENSET */
    case 'd': {                                       /* DICT */
      size_t m = 0;
      MP_TRY(pop_mark(L, op == 'd' ? "DICT" : "LIST", pos, &m));
      if (op == 'd' && (L->sp - m) % 2)
        return mp_err(MP_ERR_FORMAT, "%s: DICT at byte %zu with an odd number of items", L->what, pos);
      pval *t = NULL;
      MP_TRY(build_tuple(L, m, &t));
      t->kind = op == 'd' ? V_DICT : V_LIST;
      if (op == 'd') t->n /= 2, t->cap = t->n;
      s = push(L, t);
      break;
    }
    case 'a': { /* APPEND */
      NEED_STACK(2, "APPEND");
      pval *lst = L->stack[L->sp - 2];
      if (lst->kind != V_LIST)
        return mp_err(MP_ERR_FORMAT, "%s: APPEND at byte %zu to a %s", L->what, pos, kind_name(lst->kind));
      s = items_push(L, lst, L->stack[L->sp - 1]);
      L->sp--;
      break;
    }
    case 'e':    /* APPENDS */
    case 0x90: { /* ADDITEMS */
      size_t m = 0;
      MP_TRY(pop_mark(L, op == 'e' ? "APPENDS" : "ADDITEMS", pos, &m));
      if (m == 0 || m <= floor_sp(L)) return underflow(L, "APPENDS", pos);
      pval *lst = L->stack[m - 1];
      if (lst->kind != V_LIST)
        return mp_err(MP_ERR_FORMAT, "%s: APPENDS at byte %zu to a %s", L->what, pos, kind_name(lst->kind));
      for (size_t k = m; k < L->sp && s == MP_OK; k++)
        s = items_push(L, lst, L->stack[k]);
      L->sp = m;
      break;
    }
    case 's': { /* SETITEM */
      NEED_STACK(3, "SETITEM");
      pval *d = L->stack[L->sp - 3];
      if (d->kind != V_DICT)
        return mp_err(MP_ERR_FORMAT, "%s: SETITEM at byte %zu on a %s", L->what, pos, kind_name(d->kind));
      /* items holds 2 per entry: reuse items_push twice with n counting pairs */
      d->n *= 2;
      d->cap *= 2;
      s = items_push(L, d, L->stack[L->sp - 2]);
      if (s == MP_OK) s = items_push(L, d, L->stack[L->sp - 1]);
      d->n /= 2;
      d->cap /= 2;
      L->sp -= 2;
      break;
    }
    case 'u': { /* SETITEMS */
      size_t m = 0;
      MP_TRY(pop_mark(L, "SETITEMS", pos, &m));
      if (m == 0 || m <= floor_sp(L)) return underflow(L, "SETITEMS", pos);
      if ((L->sp - m) % 2)
        return mp_err(MP_ERR_FORMAT, "%s: SETITEMS at byte %zu with an odd number of items", L->what, pos);
      pval *d = L->stack[m - 1];
      if (d->kind != V_DICT)
        return mp_err(MP_ERR_FORMAT, "%s: SETITEMS at byte %zu on a %s", L->what, pos, kind_name(d->kind));
      d->n *= 2;
      d->cap *= 2;
      for (size_t k = m; k < L->sp && s == MP_OK; k++)
        s = items_push(L, d, L->stack[k]);
      d->n /= 2;
      d->cap /= 2;
      L->sp = m;
      break;
    }
    case 'q': /* BINPUT */
      NEED(1);
      s = memo_put(L, p[i], pos);
      i += 1;
      break;
    case 'r': /* LONG_BINPUT */
      NEED(4);
      s = memo_put(L, le(p + i, 4), pos);
      i += 4;
      break;
    case 0x94: /* MEMOIZE */ s = memo_put(L, L->memo_count, pos); break;
    case 'h': /* BINGET */
      NEED(1);
      s = memo_get(L, p[i], pos);
      i += 1;
      break;
    case 'j': /* LONG_BINGET */
      NEED(4);
      s = memo_get(L, le(p + i, 4), pos);
      i += 4;
      break;
    case 'p':   /* PUT (text) */
    case 'g': { /* GET (text) */
      const uint8_t *ln = NULL;
      size_t len = 0;
      int64_t idx;
      MP_TRY(read_line(L, p, n, &i, &ln, &len));
      if (!parse_dec(ln, len, &idx) || idx < 0)
        return mp_err(MP_ERR_FORMAT, "%s: bad memo index at byte %zu", L->what, pos);
      s = op == 'p' ? memo_put(L, (uint64_t)idx, pos) : memo_get(L, (uint64_t)idx, pos);
      break;
    }
    case 'c':   /* GLOBAL "module\nname\n" */
    case 'i': { /* INST "module\nname\n" (class lookup, then a call with the marked args) */
      const uint8_t *mod = NULL, *name = NULL;
      size_t ml = 0, nl = 0;
      MP_TRY(read_line(L, p, n, &i, &mod, &ml));
      MP_TRY(read_line(L, p, n, &i, &name, &nl));
      pval *g = NULL;
      MP_TRY(resolve_global(L, mod, ml, name, nl, &g));
      if (op == 'c') {
        s = push(L, g);
      } else {
        size_t m = 0;
        pval *args, *r;
        MP_TRY(pop_mark(L, "INST", pos, &m));
        MP_TRY(build_tuple(L, m, &args));
        MP_TRY(call(L, g, args, 0, &r));
        s = push(L, r);
      }
      break;
    }
    case 0x93: { /* STACK_GLOBAL */
      NEED_STACK(2, "STACK_GLOBAL");
      pval *mod = L->stack[L->sp - 2], *name = L->stack[L->sp - 1];
      if (mod->kind != V_STR || name->kind != V_STR)
        return mp_err(MP_ERR_FORMAT, "%s: STACK_GLOBAL at byte %zu with non-string module/name", L->what, pos);
      pval *g = NULL;
      MP_TRY(resolve_global(L, mod->s, mod->len, name->s, name->len, &g));
      L->sp -= 2;
      s = push(L, g);
      break;
    }
    case 'R': { /* REDUCE */
      NEED_STACK(2, "REDUCE");
      pval *r = NULL;
      MP_TRY(call(L, L->stack[L->sp - 2], L->stack[L->sp - 1], 0, &r));
      L->sp -= 2;
      s = push(L, r);
      break;
    }
    case 0x81: { /* NEWOBJ cls args: only OrderedDict */
      NEED_STACK(2, "NEWOBJ");
      pval *cls = L->stack[L->sp - 2], *args = L->stack[L->sp - 1];
      if (cls->kind != V_GLOBAL || cls->g != G_ORDERED_DICT || args->kind != V_TUPLE)
        return mp_err(MP_ERR_FORMAT, "%s: NEWOBJ at byte %zu of something other than OrderedDict", L->what, pos);
      L->sp -= 2;
      s = push(L, new_val(L, V_DICT));
      break;
    }
    case 0x92: { /* NEWOBJ_EX cls args kwargs */
      NEED_STACK(3, "NEWOBJ_EX");
      pval *cls = L->stack[L->sp - 3];
      if (cls->kind != V_GLOBAL || cls->g != G_ORDERED_DICT)
        return mp_err(MP_ERR_FORMAT, "%s: NEWOBJ_EX at byte %zu of something other than OrderedDict", L->what, pos);
      L->sp -= 3;
      s = push(L, new_val(L, V_DICT));
      break;
    }
    case 'b': /* BUILD: the state (OrderedDict._metadata, Parameter state) is not needed */
      NEED_STACK(2, "BUILD");
      L->sp--;
      break;
    case 'Q': { /* BINPERSID */
      NEED_STACK(1, "BINPERSID");
      pval *r = NULL;
      MP_TRY(persistent_load(L, L->stack[L->sp - 1], &r));
      L->stack[L->sp - 1] = r;
      break;
    }
    case 'P':
      return mp_err(MP_ERR_FORMAT, "%s: text persistent id (PERSID) at byte %zu; torch.save never writes one", L->what,
                    pos);
    case 0x82:
    case 0x83:
    case 0x84:
      return mp_err(MP_ERR_SECURITY,
                    "%s: pickle uses the copyreg extension registry (EXT opcode at byte %zu), which names arbitrary "
                    "code; refusing it. Convert the checkpoint to safetensors if you trust it",
                    L->what, pos);
    case 'o':
      return mp_err(MP_ERR_SECURITY, "%s: pickle OBJ opcode at byte %zu (object construction); refusing it", L->what,
                    pos);
    default:
      return mp_err(MP_ERR_FORMAT,
                    "%s: unsupported or invalid pickle opcode 0x%02x at byte %zu (a state dict never uses it); the "
                    "file is corrupt or not a PyTorch checkpoint",
                    L->what, op, pos);
    }
    if (s != MP_OK) return s;
  }
}

static void loader_free(loader *L) {
  free(L->st);
  free(L->slots);
  free(L->stack);
  free(L->marks);
  free(L->memo);
}

/* ------------------------------------------------------------------ the torch file */
struct mp_torch_file {
  char *path;
  mp_mmap map;
  mp_zip *zip;
  mp_arena arena; /* names, tensor table, contiguous copies */
  void **owned;   /* inflated records */
  size_t n_owned, cap_owned;
  mp_tensor *tensors;
  size_t count;
  const mp_tensor **sorted;
};

static int cmp_tensor_name(const void *a, const void *b) {
  const mp_tensor *x = *(const mp_tensor *const *)a, *y = *(const mp_tensor *const *)b;
  return strcmp(x->name, y->name);
}

/* Byte extent of a strided view: 1 + max linear element index, with overflow checks. */
static int view_extent(const ptensor *t, int64_t *numel, int64_t *max_elem) {
  int64_t n = 1, hi = t->offset;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] && n > INT64_MAX / t->shape[d]) return 0;
    n *= t->shape[d];
  }
  *numel = n;
  if (n == 0) {
    *max_elem = 0;
    return 1;
  }
  for (int d = 0; d < t->ndim; d++) {
    int64_t span = t->shape[d] - 1;
    if (span && t->stride[d] > INT64_MAX / span) return 0;
    if (hi > INT64_MAX - span * t->stride[d]) return 0;
    hi += span * t->stride[d];
  }
  if (hi == INT64_MAX) return 0;
  *max_elem = hi + 1;
  return 1;
}

static void gather(uint8_t *dst, const uint8_t *base, const ptensor *t, size_t es) {
  int64_t idx[MP_MAX_DIMS] = {0};
  int nd = t->ndim;
  int64_t inner = nd ? t->shape[nd - 1] : 1, istride = nd ? t->stride[nd - 1] : 1;
  int64_t outer = 1;
  for (int d = 0; d < nd - 1; d++)
    outer *= t->shape[d];
  for (int64_t o = 0; o < outer; o++) {
    int64_t off = t->offset;
    for (int d = 0; d < nd - 1; d++)
      off += idx[d] * t->stride[d];
    if (istride == 1) {
      memcpy(dst, base + (size_t)off * es, (size_t)inner * es);
      dst += (size_t)inner * es;
    } else {
      for (int64_t k = 0; k < inner; k++) {
        memcpy(dst, base + (size_t)(off + k * istride) * es, es);
        dst += es;
      }
    }
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < t->shape[d]) break;
      idx[d] = 0;
    }
  }
}

/* Turns the unpickled top-level object into the tensor table. */
static mp_status build_table(mp_torch_file *tf, loader *L, pval *root, int with_data) {
  if (root->kind != V_DICT)
    return mp_err(MP_ERR_FORMAT,
                  "%s: the pickle holds a %s, not a state dict (a dict of name -> tensor); save model.state_dict()",
                  L->what, kind_name(root->kind));
  size_t nt = 0;
  for (size_t k = 0; k < root->n; k++)
    if (root->items[2 * k + 1]->kind == V_TENSOR) nt++;
  if (!tf) { /* check mode: validate keys and shapes only */
    for (size_t k = 0; k < root->n; k++) {
      pval *key = root->items[2 * k], *val = root->items[2 * k + 1];
      if (val->kind != V_TENSOR) continue;
      if (key->kind != V_STR)
        return mp_err(MP_ERR_FORMAT, "%s: a tensor is stored under a %s key", L->what, kind_name(key->kind));
      int64_t numel, hi;
      if (!view_extent(val->t, &numel, &hi)) return mp_err(MP_ERR_FORMAT, "%s: tensor shape overflows", L->what);
    }
    return MP_OK;
  }
  tf->tensors = mp_arena_alloc(&tf->arena, (nt ? nt : 1) * sizeof *tf->tensors);
  tf->sorted = mp_arena_alloc(&tf->arena, (nt ? nt : 1) * sizeof *tf->sorted);
  if (!tf->tensors || !tf->sorted) return oom(L);
  size_t c = 0;
  for (size_t k = 0; k < root->n; k++) {
    pval *key = root->items[2 * k], *val = root->items[2 * k + 1];
    if (val->kind != V_TENSOR) continue;
    char kp[256];
    if (key->kind != V_STR)
      return mp_err(MP_ERR_FORMAT, "%s: a tensor is stored under a %s key", L->what, kind_name(key->kind));
    printable(kp, sizeof kp, key->s, key->len);
    if (key->len == 0 || memchr(key->s, 0, key->len))
      return mp_err(MP_ERR_FORMAT, "%s: tensor name '%s' is empty or contains a NUL byte", L->what, kp);
    const ptensor *t = val->t;
    pstorage *st = &L->st[t->storage];
    size_t es = mp_dtype_size(t->dtype);
    int64_t numel, hi;
    if (!view_extent(t, &numel, &hi) || (uint64_t)hi > UINT64_MAX / es)
      return mp_err(MP_ERR_FORMAT, "%s: tensor '%s': shape/stride/offset overflow", L->what, kp);
    if (!st->have_data)
      return mp_err(MP_ERR_FORMAT, "%s: tensor '%s': its storage '%s' has no data in the file", L->what, kp, st->key);
    /* the bytes this tensor may address: the storage, or its legacy view */
    const uint8_t *base = st->data;
    uint64_t avail = st->nbytes;
    if (t->view_numel >= 0) {
      size_t ses = mp_dtype_size(t->storage_dtype);
      uint64_t vo = (uint64_t)t->view_off * ses, vn = (uint64_t)t->view_numel * ses;
      if (vo > avail || vn > avail - vo)
        return mp_err(MP_ERR_FORMAT, "%s: tensor '%s': storage view lies outside storage '%s'", L->what, kp, st->key);
      base += vo;
      avail = vn;
    }
    uint64_t need = (uint64_t)hi * es;
    if (need > avail) {
      char sh[128];
      return mp_err(
          MP_ERR_FORMAT,
          "%s: tensor '%s' (%s %s, offset %lld) needs %llu bytes of storage '%s' but it has %llu; the file is "
          "corrupt",
          L->what, kp, mp_dtype_name(t->dtype), mp_shape_str(t->shape, t->ndim, sh, sizeof sh), (long long)t->offset,
          (unsigned long long)need, st->key, (unsigned long long)avail);
    }
    if ((uint64_t)numel > (uint64_t)(SIZE_MAX / 4) / es)
      return mp_err(MP_ERR_FORMAT, "%s: tensor '%s' has %lld elements, too many to hold in memory", L->what, kp,
                    (long long)numel);
    mp_tensor *mt = &tf->tensors[c];
    mt->name = mp_arena_strndup(&tf->arena, (const char *)key->s, key->len);
    if (!mt->name) return oom(L);
    mt->dtype = t->dtype;
    mt->ndim = t->ndim;
    memcpy(mt->shape, t->shape, sizeof mt->shape);
    memcpy(mt->strides, t->stride, sizeof mt->strides);
    mt->nbytes = (size_t)numel * es;
    if (numel == 0) {
      mt->data = base;
    } else if (with_data) {
      const uint8_t *src = base + (size_t)t->offset * es;
      if (mp_tensor_is_contiguous(mt) && (uintptr_t)src % es == 0) {
        mt->data = src;
      } else {
        /* copies are bounded: a view can address more elements than its storage holds only
         * through stride 0 or overlap (expand()), which no real state dict does at scale */
        if (mt->nbytes > L->copy_budget)
          return mp_err(MP_ERR_FORMAT,
                        "%s: tensor '%s' would take %zu bytes once made contiguous, more than the checkpoint could "
                        "justify (%llu bytes left of the budget); refusing it",
                        L->what, kp, mt->nbytes, (unsigned long long)L->copy_budget);
        L->copy_budget -= mt->nbytes;
        uint8_t *dst = mp_arena_alloc_aligned(&tf->arena, mt->nbytes, 64);
        if (!dst) return mp_err(MP_ERR_NOMEM, "%s: tensor '%s': cannot allocate %zu bytes", L->what, kp, mt->nbytes);
        gather(dst, base, t, es);
        mt->data = dst;
      }
    }
    mp_tensor_set_contiguous(mt);
    tf->sorted[c] = mt;
    c++;
  }
  /* Python dict semantics: a repeated key keeps its first position and its last value */
  qsort(tf->sorted, c, sizeof *tf->sorted, cmp_tensor_name);
  size_t dups = 0;
  for (size_t k = 1; k < c; k++)
    if (strcmp(tf->sorted[k - 1]->name, tf->sorted[k]->name) == 0) dups++;
  if (dups) {
    /* rare (only hand-made pickles): resolve in O(n log n) via the sorted order */
    const mp_tensor **keep = malloc(c * sizeof *keep);
    if (!keep) return oom(L);
    size_t o = 0;
    for (size_t a = 0; a < c;) {
      size_t b = a;
      const mp_tensor *first = tf->sorted[a], *last = tf->sorted[a];
      while (b < c && strcmp(tf->sorted[b]->name, first->name) == 0) {
        if (tf->sorted[b] < first) first = tf->sorted[b];
        if (tf->sorted[b] > last) last = tf->sorted[b];
        b++;
      }
      if (first != last) {
        mp_tensor tmp = *last;
        *(mp_tensor *)first = tmp; /* value of the last, position of the first */
        for (size_t k = a; k < b; k++)
          if (tf->sorted[k] != first) ((mp_tensor *)tf->sorted[k])->name = NULL;
      }
      a = b;
    }
    for (size_t k = 0; k < c; k++)
      if (tf->tensors[k].name) tf->tensors[o++] = tf->tensors[k];
    c = o;
    for (size_t k = 0; k < c; k++)
      keep[k] = &tf->tensors[k];
    memcpy(tf->sorted, keep, c * sizeof *keep);
    free(keep);
    qsort(tf->sorted, c, sizeof *tf->sorted, cmp_tensor_name);
  }
  tf->count = c;
  return MP_OK;
}

static void loader_init(loader *L, const char *what, mp_arena *arena, size_t input_size, lmode mode) {
  memset(L, 0, sizeof *L);
  L->what = what;
  L->arena = arena;
  L->mode = mode;
  /* a state dict pickle needs far less than this: a few hundred bytes per tensor */
  L->arena_limit = (size_t)256 << 20;
  if (input_size < ((size_t)1 << 28)) L->arena_limit += input_size * 32;
  L->copy_budget = ((uint64_t)256 << 20) + 2 * (uint64_t)input_size;
}

static const uint8_t k_legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static mp_status load_legacy(mp_torch_file *tf, loader *L, const uint8_t *d, size_t n) {
  size_t pos = 0, used;
  pval *v;
  /* 1. magic number */
  mp_status s = unpickle(L, d, n, &used, &v);
  if (s != MP_OK || v->kind != V_BIGINT || v->len != 10 || memcmp(v->s, k_legacy_magic, 10) != 0)
    return mp_err(MP_ERR_FORMAT,
                  "%s: not a PyTorch checkpoint: neither a zip archive nor a legacy torch.save stream (bad magic "
                  "number)",
                  L->what);
  pos += used;
  /* 2. protocol version */
  MP_TRY(unpickle(L, d + pos, n - pos, &used, &v));
  if (v->kind != V_INT || v->i != 1001)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: legacy torch.save protocol version is not 1001", L->what);
  pos += used;
  /* 3. sys_info: byte order */
  MP_TRY(unpickle(L, d + pos, n - pos, &used, &v));
  pos += used;
  if (v->kind == V_DICT)
    for (size_t k = 0; k < v->n; k++) {
      pval *key = v->items[2 * k], *val = v->items[2 * k + 1];
      if (key->kind == V_STR && streq(key->s, key->len, "little_endian") && val->kind == V_BOOL && !val->i)
        return mp_err(MP_ERR_UNSUPPORTED,
                      "%s: the checkpoint was saved on a big-endian machine; mlxport reads little-endian "
                      "checkpoints only (re-save it on a little-endian machine or convert it to safetensors)",
                      L->what);
    }
  /* 4. the data pickle */
  pval *root;
  L->allow_pid = 1;
  MP_TRY(unpickle(L, d + pos, n - pos, &used, &root));
  L->allow_pid = 0;
  pos += used;
  /* 5. storage keys, then the storages in that order */
  pval *keys;
  MP_TRY(unpickle(L, d + pos, n - pos, &used, &keys));
  pos += used;
  if (keys->kind != V_LIST)
    return mp_err(MP_ERR_FORMAT, "%s: legacy checkpoint: storage key list is a %s", L->what, kind_name(keys->kind));
  for (size_t k = 0; k < keys->n; k++) {
    pval *key = keys->items[k];
    if (key->kind != V_STR && key->kind != V_BYTES)
      return mp_err(MP_ERR_FORMAT, "%s: legacy checkpoint: storage key %zu is a %s", L->what, k, kind_name(key->kind));
    int64_t si = storage_find(L, key->s, key->len, hash_bytes(key->s, key->len));
    char kp[64];
    printable(kp, sizeof kp, key->s, key->len);
    if (si < 0)
      return mp_err(MP_ERR_FORMAT, "%s: legacy checkpoint lists storage '%s' that no tensor references", L->what, kp);
    pstorage *st = &L->st[si];
    if (st->have_data) return mp_err(MP_ERR_FORMAT, "%s: legacy checkpoint lists storage '%s' twice", L->what, kp);
    if (n - pos < 8) return mp_err(MP_ERR_FORMAT, "%s: legacy checkpoint truncated before storage '%s'", L->what, kp);
    int64_t cnt = (int64_t)le(d + pos, 8);
    pos += 8;
    size_t es = mp_dtype_size(st->dtype);
    if (cnt < 0 || (uint64_t)cnt > (n - pos) / es)
      return mp_err(MP_ERR_FORMAT,
                    "%s: legacy checkpoint: storage '%s' claims %lld elements of %s but only %zu bytes remain; the "
                    "file is truncated",
                    L->what, kp, (long long)cnt, mp_dtype_name(st->dtype), n - pos);
    st->data = d + pos;
    st->nbytes = (uint64_t)cnt * es;
    st->have_data = 1;
    pos += (size_t)st->nbytes;
  }
  return build_table(tf, L, root, 1);
}

static mp_status load_zip(mp_torch_file *tf, loader *L) {
  const mp_zip *z = tf->zip;
  /* torch names every record "<prefix>/..."; the prefix is the first entry's top folder */
  const mp_zip_entry *first = mp_zip_at(z, 0);
  if (!first) return mp_err(MP_ERR_FORMAT, "%s: empty zip archive, not a PyTorch checkpoint", L->what);
  const char *slash = memchr(first->name, '/', first->name_len);
  if (!slash) return mp_err(MP_ERR_FORMAT, "%s: zip archive without a top folder; not a PyTorch checkpoint", L->what);
  L->prefix = first->name;
  L->prefix_len = (size_t)(slash - first->name);
  char name[512];
  if (L->prefix_len > sizeof name - 32) return mp_err(MP_ERR_FORMAT, "%s: zip top folder name is too long", L->what);
  snprintf(name, sizeof name, "%.*s/byteorder", (int)L->prefix_len, L->prefix);
  const mp_zip_entry *bo = mp_zip_find(z, name);
  const uint8_t *d;
  size_t sz;
  void *own;
  if (bo) {
    MP_TRY(mp_zip_read(z, bo, 64, 1, &d, &sz, &own));
    int big = sz == 3 && memcmp(d, "big", 3) == 0, little = sz == 6 && memcmp(d, "little", 6) == 0;
    free(own);
    if (big)
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s: the checkpoint was saved on a big-endian machine (byteorder 'big'); mlxport reads "
                    "little-endian checkpoints only (re-save it on a little-endian machine or convert it to "
                    "safetensors)",
                    L->what);
    if (!little) return mp_err(MP_ERR_FORMAT, "%s: unrecognised byteorder record in the archive", L->what);
  }
  snprintf(name, sizeof name, "%.*s/data.pkl", (int)L->prefix_len, L->prefix);
  const mp_zip_entry *pk = mp_zip_find(z, name);
  if (!pk)
    return mp_err(MP_ERR_FORMAT,
                  "%s: zip archive has no '%s'; it is not a torch.save checkpoint (a TorchScript archive? Use a "
                  "state dict saved with torch.save)",
                  L->what, name);
  MP_TRY(mp_zip_read(z, pk, PK_MAX_PICKLE, 1, &d, &sz, &own));
  if (own) MP_TRY(owned_push(L, own));
  pval *root;
  size_t used;
  L->allow_pid = 1;
  L->arena_limit = ((size_t)256 << 20) + (sz < ((size_t)1 << 28) ? sz * 32 : 0);
  MP_TRY(unpickle(L, d, sz, &used, &root));
  return build_table(tf, L, root, 1);
}

void mp_torch_close(mp_torch_file *tf) {
  if (!tf) return;
  for (size_t i = 0; i < tf->n_owned; i++)
    free(tf->owned[i]);
  free(tf->owned);
  mp_zip_close(tf->zip);
  if (tf->map.data) mp_mmap_close(&tf->map);
  mp_arena_free(&tf->arena);
  free(tf->path);
  free(tf);
}

static mp_status open_bytes(mp_torch_file *tf, const uint8_t *d, size_t n) {
  mp_arena parse;
  mp_arena_init(&parse, 256 * 1024);
  loader L;
  mp_status s;
  if (n >= 4 && memcmp(d, "PK\x03\x04", 4) == 0) {
    s = mp_zip_open_memory(d, n, tf->path, &tf->zip);
    if (s == MP_OK) {
      loader_init(&L, tf->path, &parse, n, MODE_ZIP);
      L.zip = tf->zip;
      L.owned = &tf->owned;
      L.n_owned = &tf->n_owned;
      L.cap_owned = &tf->cap_owned;
      s = load_zip(tf, &L);
      loader_free(&L);
    }
  } else if (n >= 2 && d[0] == 0x80) {
    loader_init(&L, tf->path, &parse, n, MODE_LEGACY);
    s = load_legacy(tf, &L, d, n);
    loader_free(&L);
  } else if (n >= 262 && memcmp(d + 257, "ustar", 5) == 0) {
    s = mp_err(MP_ERR_UNSUPPORTED,
               "%s: tar-based PyTorch checkpoint (torch <= 0.3); re-save it with a newer torch or convert it to "
               "safetensors",
               tf->path);
  } else {
    s = mp_err(MP_ERR_FORMAT, "%s: not a PyTorch checkpoint (neither a zip archive nor a torch.save pickle stream)",
               tf->path);
  }
  mp_arena_free(&parse);
  return s;
}

mp_status mp_torch_open(const char *path, mp_torch_file **out) {
  *out = NULL;
  mp_torch_file *tf = calloc(1, sizeof *tf);
  if (!tf || !(tf->path = strdup(path))) {
    free(tf);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory", path);
  }
  mp_arena_init(&tf->arena, 64 * 1024);
  mp_status s = mp_mmap_open(path, &tf->map);
  if (s == MP_OK) s = open_bytes(tf, tf->map.data, tf->map.size);
  if (s != MP_OK) {
    mp_torch_close(tf);
    return s;
  }
  *out = tf;
  return MP_OK;
}

mp_status mp_torch_open_memory(const void *data, size_t size, const char *what, mp_torch_file **out) {
  *out = NULL;
  if (!what) what = "<memory>";
  mp_torch_file *tf = calloc(1, sizeof *tf);
  if (!tf || !(tf->path = strdup(what))) {
    free(tf);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  }
  mp_arena_init(&tf->arena, 64 * 1024);
  mp_status s = open_bytes(tf, data ? data : (const void *)"", data ? size : 0);
  if (s != MP_OK) {
    mp_torch_close(tf);
    return s;
  }
  *out = tf;
  return MP_OK;
}

mp_status mp_torch_verify(const mp_torch_file *tf) {
  if (!tf || !tf->zip) return MP_OK; /* the legacy layout has no checksums */
  for (size_t i = 0; i < mp_zip_count(tf->zip); i++)
    MP_TRY(mp_zip_verify(tf->zip, mp_zip_at(tf->zip, i)));
  return MP_OK;
}

size_t mp_torch_count(const mp_torch_file *tf) { return tf ? tf->count : 0; }
const mp_tensor *mp_torch_at(const mp_torch_file *tf, size_t i) { return tf && i < tf->count ? &tf->tensors[i] : NULL; }
const char *mp_torch_path(const mp_torch_file *tf) { return tf ? tf->path : NULL; }

const mp_tensor *mp_torch_find(const mp_torch_file *tf, const char *name) {
  if (!tf || !name) return NULL;
  size_t lo = 0, hi = tf->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(tf->sorted[mid]->name, name);
    if (c == 0) return tf->sorted[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

mp_status mp_torch_check_pickle(const void *data, size_t size, const char *what) {
  if (!what) what = "<pickle>";
  if (!data) data = "", size = 0;
  mp_arena parse;
  mp_arena_init(&parse, 64 * 1024);
  loader L;
  loader_init(&L, what, &parse, size, MODE_CHECK);
  L.allow_pid = 1;
  pval *root;
  size_t used;
  mp_status s = unpickle(&L, data, size, &used, &root);
  if (s == MP_OK) s = build_table(NULL, &L, root, 0);
  loader_free(&L);
  mp_arena_free(&parse);
  return s;
}
