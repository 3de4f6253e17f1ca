/* Unigram model: piece hash + byte trie + Viterbi. See unigram.h for the two flavours. */
#include "tokenizer/unigram.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"

/* Trie node. Children of a node are the contiguous nodes [child, child + nchild), sorted by
 * label. id >= 0 when the bytes from the root to this node spell a piece. */
typedef struct trie_node {
  uint32_t child;
  uint32_t nchild;
  int32_t id;
  uint8_t label;
} trie_node;

struct mp_unigram {
  mp_unigram_flavor flavor;
  size_t n;
  char **pieces; /* NUL-terminated copies */
  size_t *lens;
  double *scores;
  uint8_t *types;
  int64_t unk_id;
  int byte_fallback;
  double unk_score;      /* min_score - 10 (double in HF, float value in SPM) */
  float max_score;       /* SPM: max over NORMAL pieces (starts at FLT_MIN, as SentencePiece) */
  int32_t byte_ids[256]; /* id of "<0xXX>" or -1 */
  /* hash: piece string -> id (open addressing, power-of-two size) */
  int32_t *hslots;
  size_t hmask;
  /* trie */
  trie_node *nodes;
  size_t n_nodes;
  int32_t root_next[256]; /* node index of the root's child for each byte, or -1 */
};

typedef struct vnode {
  double score;  /* best path score ending here */
  int32_t start; /* -1 = not reached */
  int32_t id;
} vnode;

void mp_unigram_opts_init(mp_unigram_opts *o) {
  memset(o, 0, sizeof *o);
  o->flavor = MP_UNIGRAM_HF;
  o->unk_id = -1;
}

/* ---- hash ---------------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)s[i];
    h *= 1099511628211ull;
  }
  return h ^ (h >> 29);
}

static int64_t hash_find(const mp_unigram *m, const char *s, size_t n) {
  if (!m->hslots) return -1;
  size_t i = (size_t)hash_bytes(s, n) & m->hmask;
  for (;;) {
    int32_t id = m->hslots[i];
    if (id < 0) return -1;
    if (m->lens[id] == n && memcmp(m->pieces[id], s, n) == 0) return id;
    i = (i + 1) & m->hmask;
  }
}

/* Inserts id; an existing equal string is replaced (HF HashMap::insert keeps the last id).
 * Returns the id it replaced, or -1. */
static int32_t hash_put(mp_unigram *m, int32_t id) {
  size_t i = (size_t)hash_bytes(m->pieces[id], m->lens[id]) & m->hmask;
  for (;;) {
    int32_t o = m->hslots[i];
    if (o < 0) {
      m->hslots[i] = id;
      return -1;
    }
    if (m->lens[o] == m->lens[id] && memcmp(m->pieces[o], m->pieces[id], m->lens[id]) == 0) {
      m->hslots[i] = id;
      return o;
    }
    i = (i + 1) & m->hmask;
  }
}

/* ---- trie build ---------------------------------------------------------------------------- */

static const mp_unigram *g_sort_model; /* qsort has no context argument in C11 */

static int cmp_piece(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  const mp_unigram *m = g_sort_model;
  size_t lx = m->lens[x], ly = m->lens[y];
  int c = memcmp(m->pieces[x], m->pieces[y], lx < ly ? lx : ly);
  if (c) return c;
  if (lx != ly) return lx < ly ? -1 : 1;
  return x < y ? -1 : (x > y);
}

static mp_status build_trie(mp_unigram *m, int32_t *keys, size_t nk, const char *what) {
  /* Upper bound on nodes: 1 + total key bytes. */
  size_t cap = 1;
  for (size_t i = 0; i < nk; i++)
    cap += m->lens[keys[i]];
  if (cap > INT32_MAX)
    return mp_err(MP_ERR_NOMEM, "%s: vocabulary too large for the piece trie (%zu bytes)", what, cap);
  g_sort_model = m;
  qsort(keys, nk, sizeof *keys, cmp_piece);
  g_sort_model = NULL;
  m->nodes = malloc(cap * sizeof *m->nodes);
  uint32_t *lo = malloc(cap * sizeof *lo), *hi = malloc(cap * sizeof *hi), *depth = malloc(cap * sizeof *depth);
  if (!m->nodes || !lo || !hi || !depth) {
    free(lo), free(hi), free(depth);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory building the piece trie", what);
  }
  m->nodes[0] = (trie_node){0, 0, -1, 0};
  lo[0] = 0, hi[0] = (uint32_t)nk, depth[0] = 0;
  size_t nn = 1;
  for (size_t k = 0; k < nn; k++) {
    size_t a = lo[k], b = hi[k], d = depth[k];
    /* keys of exactly length d spell this node (they sort first); the last id wins */
    while (a < b && m->lens[keys[a]] == d) {
      int32_t id = keys[a];
      if (m->nodes[k].id < id) m->nodes[k].id = id;
      a++;
    }
    /* group the rest by byte d: children contiguous */
    size_t first = nn, cnt = 0;
    size_t i = a;
    while (i < b) {
      uint8_t c = (uint8_t)m->pieces[keys[i]][d];
      size_t j = i + 1;
      while (j < b && (uint8_t)m->pieces[keys[j]][d] == c)
        j++;
      m->nodes[nn] = (trie_node){0, 0, -1, c};
      lo[nn] = (uint32_t)i, hi[nn] = (uint32_t)j, depth[nn] = (uint32_t)(d + 1);
      nn++, cnt++;
      i = j;
    }
    m->nodes[k].child = (uint32_t)first;
    m->nodes[k].nchild = (uint32_t)cnt;
  }
  free(lo), free(hi), free(depth);
  m->n_nodes = nn;
  for (int c = 0; c < 256; c++)
    m->root_next[c] = -1;
  for (uint32_t i = 0; i < m->nodes[0].nchild; i++) {
    uint32_t ci = m->nodes[0].child + i;
    m->root_next[m->nodes[ci].label] = (int32_t)ci;
  }
  return MP_OK;
}

static inline int64_t trie_child(const mp_unigram *m, const trie_node *nd, uint8_t c) {
  uint32_t lo = nd->child, hi = nd->child + nd->nchild;
  if (nd->nchild <= 8) {
    for (uint32_t i = lo; i < hi; i++) {
      uint8_t l = m->nodes[i].label;
      if (l == c) return i;
      if (l > c) return -1;
    }
    return -1;
  }
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    uint8_t l = m->nodes[mid].label;
    if (l == c) return mid;
    if (l < c)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

/* ---- create / free ------------------------------------------------------------------------ */

static int byte_piece_value(const char *s, size_t n) {
  /* "<0xXX>" with upper-case hex, as SentencePiece writes it */
  if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; i++) {
    char c = s[i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

mp_status mp_unigram_create(size_t n, const char *const *pieces, const size_t *lens, const double *scores,
                            const uint8_t *types, const mp_unigram_opts *opts, mp_unigram **out) {
  *out = NULL;
  mp_unigram_opts dflt;
  if (!opts) {
    mp_unigram_opts_init(&dflt);
    opts = &dflt;
  }
  const char *what = opts->what ? opts->what : "unigram";
  int spm = opts->flavor == MP_UNIGRAM_SPM;
  if (n > INT32_MAX / 4) return mp_err(MP_ERR_FORMAT, "%s: %zu pieces is too many", what, n);
  if (!spm && opts->unk_id >= 0) {
    if (n == 0) return mp_err(MP_ERR_FORMAT, "%s: the Unigram vocabulary is empty but at least <unk> is needed", what);
    if ((uint64_t)opts->unk_id >= n)
      return mp_err(MP_ERR_FORMAT, "%s: Unigram unk_id %lld is not below the vocabulary size %zu", what,
                    (long long)opts->unk_id, n);
  }
  mp_unigram *m = calloc(1, sizeof *m);
  if (!m) return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  m->flavor = opts->flavor;
  m->n = n;
  m->byte_fallback = opts->byte_fallback ? 1 : 0;
  m->unk_id = spm ? -1 : opts->unk_id;
  m->pieces = calloc(n ? n : 1, sizeof *m->pieces);
  m->lens = malloc((n ? n : 1) * sizeof *m->lens);
  m->scores = malloc((n ? n : 1) * sizeof *m->scores);
  m->types = malloc(n ? n : 1);
  size_t hcap = 16;
  while (hcap < 2 * n + 2)
    hcap <<= 1;
  m->hslots = malloc(hcap * sizeof *m->hslots);
  int32_t *keys = malloc((n ? n : 1) * sizeof *keys);
  mp_status st = MP_OK;
  if (!m->pieces || !m->lens || !m->scores || !m->types || !m->hslots || !keys) {
    st = mp_err(MP_ERR_NOMEM, "%s: out of memory for %zu pieces", what, n);
    goto fail;
  }
  m->hmask = hcap - 1;
  for (size_t i = 0; i < hcap; i++)
    m->hslots[i] = -1;
  for (int b = 0; b < 256; b++)
    m->byte_ids[b] = -1;
  double min_hf = INFINITY;
  float min_spm = FLT_MAX, max_spm = FLT_MIN;
  int64_t unk_spm = -1;
  size_t nk = 0;
  for (size_t i = 0; i < n; i++) {
    m->lens[i] = lens[i];
    m->pieces[i] = malloc(lens[i] + 1);
    if (!m->pieces[i]) {
      st = mp_err(MP_ERR_NOMEM, "%s: out of memory for piece %zu", what, i);
      goto fail;
    }
    memcpy(m->pieces[i], pieces[i], lens[i]);
    m->pieces[i][lens[i]] = 0;
    m->types[i] = types ? types[i] : MP_SPM_NORMAL;
    int t = m->types[i];
    if (spm) {
      float f = (float)scores[i];
      m->scores[i] = f;
      if (lens[i] == 0) {
        st = mp_err(MP_ERR_FORMAT, "%s: piece %zu is empty (SentencePiece: piece must not be empty)", what, i);
        goto fail;
      }
      if (t < MP_SPM_NORMAL || t > MP_SPM_BYTE) {
        st = mp_err(MP_ERR_FORMAT, "%s: piece %zu has unknown type %d", what, i, t);
        goto fail;
      }
      if (t == MP_SPM_NORMAL) {
        if (f < min_spm) min_spm = f;
        if (f > max_spm) max_spm = f;
      }
      if (t == MP_SPM_UNKNOWN) {
        if (unk_spm >= 0) {
          st = mp_err(MP_ERR_FORMAT, "%s: pieces %lld and %zu are both UNKNOWN (unk is already defined)", what,
                      (long long)unk_spm, i);
          goto fail;
        }
        unk_spm = (int64_t)i;
      }
      if (t == MP_SPM_BYTE) {
        int v = byte_piece_value(pieces[i], lens[i]);
        if (!opts->byte_fallback) {
          st = mp_err(MP_ERR_FORMAT, "%s: byte piece %zu found although byte_fallback is false", what, i);
          goto fail;
        }
        if (v < 0) {
          st = mp_err(MP_ERR_FORMAT, "%s: byte piece %zu is not of the form <0xXX>", what, i);
          goto fail;
        }
        m->byte_ids[v] = (int32_t)i;
      }
      if (t == MP_SPM_NORMAL || t == MP_SPM_USER_DEFINED || t == MP_SPM_UNUSED) keys[nk++] = (int32_t)i;
    } else {
      m->scores[i] = scores[i];
      if (scores[i] < min_hf) min_hf = scores[i];
      keys[nk++] = (int32_t)i;
    }
    int32_t prev = hash_put(m, (int32_t)i);
    if (spm && prev >= 0) {
      st = mp_err(MP_ERR_FORMAT, "%s: piece %zu repeats piece %d (SentencePiece: already defined)", what, i, prev);
      goto fail;
    }
  }
  if (spm) {
    if (unk_spm < 0) {
      st = mp_err(MP_ERR_FORMAT, "%s: no piece has type UNKNOWN (SentencePiece: unk is not defined)", what);
      goto fail;
    }
    m->unk_id = unk_spm;
    m->unk_score = (double)(min_spm - 10.0f);
    m->max_score = max_spm;
    if (m->byte_fallback)
      for (int b = 0; b < 256; b++)
        if (m->byte_ids[b] < 0) {
          st = mp_err(MP_ERR_FORMAT, "%s: byte_fallback is on but piece <0x%02X> is missing", what, b);
          goto fail;
        }
  } else {
    m->unk_score = min_hf - 10.0;
    for (int b = 0; b < 256; b++) {
      char bp[7];
      static const char hx[] = "0123456789ABCDEF";
      memcpy(bp, "<0x", 3);
      bp[3] = hx[b >> 4], bp[4] = hx[b & 15], bp[5] = '>', bp[6] = 0;
      int64_t id = hash_find(m, bp, 6);
      m->byte_ids[b] = (int32_t)id;
    }
  }
  st = build_trie(m, keys, nk, what);
  if (st != MP_OK) goto fail;
  free(keys);
  *out = m;
  return MP_OK;
fail:
  free(keys);
  mp_unigram_free(m);
  return st;
}

void mp_unigram_free(mp_unigram *m) {
  if (!m) return;
  if (m->pieces)
    for (size_t i = 0; i < m->n; i++)
      free(m->pieces[i]);
  free(m->pieces);
  free(m->lens);
  free(m->scores);
  free(m->types);
  free(m->hslots);
  free(m->nodes);
  free(m);
}

size_t mp_unigram_size(const mp_unigram *m) { return m ? m->n : 0; }
int64_t mp_unigram_piece_to_id(const mp_unigram *m, const char *s, size_t n) { return hash_find(m, s, n); }
const char *mp_unigram_id_to_piece(const mp_unigram *m, int64_t id, size_t *len) {
  if (!m || id < 0 || (uint64_t)id >= m->n) return NULL;
  if (len) *len = m->lens[id];
  return m->pieces[id];
}
double mp_unigram_score(const mp_unigram *m, int64_t id) {
  if (!m || id < 0 || (uint64_t)id >= m->n) return NAN;
  return m->scores[id];
}
int64_t mp_unigram_unk_id(const mp_unigram *m) { return m ? m->unk_id : -1; }
int mp_unigram_byte_fallback(const mp_unigram *m) { return m ? m->byte_fallback : 0; }

void mp_unigram_scratch_free(mp_unigram_scratch *s) {
  if (!s) return;
  if (!s->borrowed) free(s->nodes);
  s->nodes = NULL;
  s->cap = 0;
  s->borrowed = 0;
}

size_t mp_unigram_scratch_need(size_t n) { return (n + 1) * sizeof(vnode) + (n + 1) * sizeof(int32_t); }

/* ---- encode -------------------------------------------------------------------------------- */

static inline size_t char_len_hf(const uint8_t *s, size_t n) {
  /* length of the UTF-8 character at s (1 for an invalid byte) */
  uint8_t b = s[0];
  size_t l = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
  if (l > n) return 1;
  for (size_t i = 1; i < l; i++)
    if ((s[i] & 0xC0) != 0x80) return 1;
  return l;
}

static inline size_t char_len_spm(const uint8_t *s, size_t n) {
  /* SentencePiece OneCharLen: from the lead byte only, clipped to the remaining size */
  static const uint8_t tab[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  size_t l = tab[s[0] >> 4];
  return l < n ? l : n;
}

static int push_tok_cb(void *user, int32_t id, uint32_t a, uint32_t b) {
  mp_unigram_tokens *out = user;
  if (out->n == out->cap) {
    size_t nc = out->cap ? out->cap * 2 : 32;
    mp_unigram_token *v = realloc(out->v, nc * sizeof *v);
    if (!v) return -1;
    out->v = v;
    out->cap = nc;
  }
  out->v[out->n++] = (mp_unigram_token){id, a, b};
  return 0;
}

typedef struct emitter {
  mp_unigram_emit_fn fn;
  void *user;
} emitter;

static int push_tok(const emitter *out, int32_t id, size_t a, size_t b) {
  return out->fn(out->user, id, (uint32_t)a, (uint32_t)b);
}

/* HF: a token string `s[a..b)` from the best path; fused unknown runs are looked up again. */
static mp_status emit_hf(const mp_unigram *m, const char *s, size_t a, size_t b, int lookup, int32_t id,
                         const emitter *out) {
  if (lookup) {
    int64_t f = hash_find(m, s + a, b - a);
    if (f >= 0)
      id = (int32_t)f;
    else {
      if (m->byte_fallback) {
        int all = 1;
        for (size_t i = a; i < b && all; i++)
          if (m->byte_ids[(uint8_t)s[i]] < 0) all = 0;
        if (all) {
          for (size_t i = a; i < b; i++)
            if (push_tok(out, m->byte_ids[(uint8_t)s[i]], a, b)) goto oom;
          return MP_OK;
        }
      }
      if (m->unk_id < 0)
        return mp_err(MP_ERR_NOT_FOUND, "Unigram: encountered an unknown token but the model has no unk_id");
      id = (int32_t)m->unk_id;
    }
  }
  if (push_tok(out, id, a, b)) goto oom;
  return MP_OK;
oom:
  return mp_err(MP_ERR_NOMEM, "Unigram: out of memory for the output tokens");
}

mp_status mp_unigram_encode(const mp_unigram *m, mp_unigram_scratch *scratch, const char *s, size_t n,
                            mp_unigram_tokens *out) {
  return mp_unigram_encode_fn(m, scratch, s, n, push_tok_cb, out);
}

mp_status mp_unigram_encode_fn(const mp_unigram *m, mp_unigram_scratch *scratch, const char *str, size_t n,
                               mp_unigram_emit_fn emit_fn, void *user) {
  if (n == 0) return MP_OK;
  const emitter em = {emit_fn, user}, *out = &em;
  if (n >= INT32_MAX) return mp_err(MP_ERR_INVALID_ARG, "Unigram: a %zu-byte piece is too long to encode", n);
  const uint8_t *s = (const uint8_t *)str;
  size_t need = (n + 1) * sizeof(vnode) + (n + 1) * sizeof(int32_t);
  if (scratch->cap < need) {
    size_t nc = need < 4096 ? 4096 : need + need / 2;
    void *p = scratch->borrowed ? malloc(nc) : realloc(scratch->nodes, nc);
    if (!p) return mp_err(MP_ERR_NOMEM, "Unigram: out of memory for a %zu-byte piece", n);
    scratch->nodes = p;
    scratch->cap = nc;
    scratch->borrowed = 0;
  }
  vnode *best = scratch->nodes;
  int32_t *path = (int32_t *)(best + n + 1);
  for (size_t i = 0; i <= n; i++)
    best[i] = (vnode){0.0, -1, -1};
  const int spm = m->flavor == MP_UNIGRAM_SPM;
  const trie_node *nodes = m->nodes;
  size_t pos = 0;
  while (pos < n) {
    const double base = best[pos].score;
    const size_t mblen = spm ? char_len_spm(s + pos, n - pos) : char_len_hf(s + pos, n - pos);
    int has_single = 0;
    int32_t k = m->root_next[s[pos]];
    size_t q = pos;
    while (k >= 0) {
      const trie_node *nd = &nodes[k];
      q++;
      if (nd->id >= 0) {
        int32_t id = nd->id;
        size_t len = q - pos;
        vnode *t = &best[q];
        if (!spm) {
          double cand = m->scores[id] + base;
          if (t->start < 0 || cand > t->score) {
            t->score = cand;
            t->start = (int32_t)pos;
            t->id = id;
          }
          if (len == mblen) has_single = 1;
        } else if (m->types[id] != MP_SPM_UNUSED) {
          if (m->types[id] == MP_SPM_USER_DEFINED) {
            double sc = (double)((float)len * m->max_score) - 0.1;
            double cand = sc + (double)(float)base;
            if (t->start < 0 || cand > t->score) {
              t->score = (double)(float)cand;
              t->start = (int32_t)pos;
              t->id = id;
            }
          } else {
            float cand = (float)m->scores[id] + (float)base;
            if (t->start < 0 || cand > (float)t->score) {
              t->score = cand;
              t->start = (int32_t)pos;
              t->id = id;
            }
          }
          if (len == mblen) has_single = 1;
        }
      }
      if (q >= n || nd->nchild == 0) break;
      k = (int32_t)trie_child(m, nd, s[q]);
    }
    if (!has_single) {
      vnode *t = &best[pos + mblen];
      if (!spm) {
        double cand = m->unk_score + base;
        if (t->start < 0 || cand > t->score) {
          if (m->unk_id < 0)
            return mp_err(MP_ERR_NOT_FOUND, "Unigram: encountered an unknown token but the model has no unk_id");
          t->score = cand;
          t->start = (int32_t)pos;
          t->id = (int32_t)m->unk_id;
        }
      } else {
        float cand = (float)m->unk_score + (float)base;
        if (t->start < 0 || cand > (float)t->score) {
          t->score = cand;
          t->start = (int32_t)pos;
          t->id = (int32_t)m->unk_id;
        }
      }
    }
    pos += mblen;
  }
  /* backtrack: path[] = segment end positions, last first */
  size_t np = 0;
  size_t e = n;
  while (e > 0) {
    if (best[e].start < 0 || (size_t)best[e].start >= e)
      return mp_err(MP_ERR_INTERNAL, "Unigram: no segmentation reaches byte %zu of a %zu-byte piece", e, n);
    path[np++] = (int32_t)e;
    e = (size_t)best[e].start;
  }
  /* walk forward */
  size_t start = 0;
  if (!spm) {
    size_t run_a = 0;
    int in_run = 0;
    for (size_t i = np; i-- > 0;) {
      size_t end = (size_t)path[i];
      int32_t id = best[end].id;
      if (m->unk_id >= 0 && id == m->unk_id) {
        if (!in_run) run_a = start, in_run = 1;
      } else {
        if (in_run) {
          MP_TRY(emit_hf(m, str, run_a, start, 1, 0, out));
          in_run = 0;
        }
        MP_TRY(emit_hf(m, str, start, end, 0, id, out));
      }
      start = end;
    }
    if (in_run) MP_TRY(emit_hf(m, str, run_a, start, 1, 0, out));
  } else {
    /* an unknown piece is held back until the next piece, which may extend it */
    int prev_unk = 0, pending = 0;
    size_t pend_a = 0, pend_b = 0;
    for (size_t i = np; i-- > 0;) {
      size_t end = (size_t)path[i];
      int32_t id = best[end].id;
      int is_unk = id == m->unk_id;
      if (is_unk && m->byte_fallback) {
        for (size_t j = start; j < end; j++)
          if (push_tok(out, m->byte_ids[s[j]], start, end)) goto oom;
      } else if (is_unk && prev_unk && pending) {
        pend_b = end;
      } else {
        if (pending && push_tok(out, (int32_t)m->unk_id, pend_a, pend_b)) goto oom;
        pending = 0;
        if (is_unk)
          pending = 1, pend_a = start, pend_b = end;
        else if (push_tok(out, id, start, end))
          goto oom;
      }
      prev_unk = is_unk;
      start = end;
    }
    if (pending && push_tok(out, (int32_t)m->unk_id, pend_a, pend_b)) goto oom;
  }
  return MP_OK;
oom:
  return mp_err(MP_ERR_NOMEM, "Unigram: out of memory for the output tokens");
}

mp_status mp_unigram_from_json(const mp_json *model, const char *what, mp_unigram **out) {
  *out = NULL;
  if (!what) what = "tokenizer.json";
  if (!model || model->type != MP_JSON_OBJECT)
    return mp_err(MP_ERR_FORMAT, "%s: the Unigram \"model\" is not an object", what);
  const char *type = mp_json_get_str(model, "type", "Unigram");
  if (strcmp(type, "Unigram") != 0)
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: model type is \"%s\", not \"Unigram\"", what, model->line, model->col,
                  type);
  const mp_json *vocab = mp_json_get(model, "vocab");
  if (!vocab || vocab->type != MP_JSON_ARRAY)
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: Unigram model has no \"vocab\" array", what, model->line, model->col);
  mp_unigram_opts o;
  mp_unigram_opts_init(&o);
  o.what = what;
  const mp_json *unk = mp_json_get(model, "unk_id");
  if (unk && unk->type != MP_JSON_NULL) {
    if (unk->type != MP_JSON_NUMBER || !unk->is_int || unk->i < 0)
      return mp_err(MP_ERR_FORMAT, "%s:%u:%u: Unigram \"unk_id\" must be a non-negative integer or null", what,
                    unk->line, unk->col);
    o.unk_id = unk->i;
  }
  const mp_json *bf = mp_json_get(model, "byte_fallback");
  if (bf && bf->type != MP_JSON_BOOL)
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: Unigram \"byte_fallback\" must be true or false", what, bf->line, bf->col);
  o.byte_fallback = bf ? bf->boolean : 0;
  size_t n = vocab->len;
  const char **p = malloc((n ? n : 1) * sizeof *p);
  size_t *l = malloc((n ? n : 1) * sizeof *l);
  double *s = malloc((n ? n : 1) * sizeof *s);
  mp_status st = MP_OK;
  if (!p || !l || !s) st = mp_err(MP_ERR_NOMEM, "%s: out of memory for %zu Unigram pieces", what, n);
  for (size_t i = 0; st == MP_OK && i < n; i++) {
    const mp_json *e = vocab->items[i];
    if (e->type != MP_JSON_ARRAY || e->len != 2 || e->items[0]->type != MP_JSON_STRING ||
        e->items[1]->type != MP_JSON_NUMBER) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: Unigram vocab entry %zu is not [\"piece\", score]", what, e->line, e->col,
                  i);
      break;
    }
    p[i] = e->items[0]->str;
    l[i] = e->items[0]->len;
    s[i] = e->items[1]->num;
  }
  if (st == MP_OK) st = mp_unigram_create(n, p, l, s, NULL, &o, out);
  free(p), free(l), free(s);
  return st;
}
