/* Minimal Parquet reader (see parquet.h). Layout reference: the Apache Parquet format
 * specification (parquet.thrift) and the Thrift compact protocol specification. */
#include "format/parquet.h"

#include <limits.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"

#define PQ_MAX_ROWS ((int64_t)1 << 24)  /* rows per file (evaluation splits are far smaller) */
#define PQ_MAX_PAGE ((size_t)256 << 20) /* uncompressed bytes per page */
#define PQ_MAX_COLUMNS 4096
#define PQ_MAX_ROW_GROUPS 65536
#define TH_MAX_DEPTH 32

/* ------------------------------------------------------------------ Thrift compact protocol */

enum {
  CT_STOP = 0,
  CT_TRUE = 1,
  CT_FALSE = 2,
  CT_BYTE = 3,
  CT_I16 = 4,
  CT_I32 = 5,
  CT_I64 = 6,
  CT_DOUBLE = 7,
  CT_BINARY = 8,
  CT_LIST = 9,
  CT_SET = 10,
  CT_MAP = 11,
  CT_STRUCT = 12,
};

typedef struct th {
  const uint8_t *p, *end;
  int err; /* 1 after any overrun or malformed value; readers then return zeros */
  int depth;
} th;

static uint64_t th_varint(th *t) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (t->p >= t->end) {
      t->err = 1;
      return 0;
    }
    uint8_t b = *t->p++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  t->err = 1;
  return 0;
}

static int64_t th_zigzag(th *t) {
  uint64_t v = th_varint(t);
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static uint8_t th_byte(th *t) {
  if (t->p >= t->end) {
    t->err = 1;
    return 0;
  }
  return *t->p++;
}

/* binary/string: returns a pointer into the buffer */
static const uint8_t *th_binary(th *t, size_t *len) {
  uint64_t n = th_varint(t);
  if (t->err || n > (uint64_t)(t->end - t->p)) {
    t->err = 1;
    *len = 0;
    return NULL;
  }
  const uint8_t *s = t->p;
  t->p += n;
  *len = (size_t)n;
  return s;
}

static void th_skip(th *t, int type);

/* list/set header: element type and count */
static uint64_t th_list_begin(th *t, int *etype) {
  uint8_t h = th_byte(t);
  uint64_t n = h >> 4;
  *etype = h & 0x0f;
  if (n == 15) n = th_varint(t);
  /* every element takes at least one byte (bools in lists: one byte) */
  if (n > (uint64_t)(t->end - t->p)) t->err = 1;
  return t->err ? 0 : n;
}

static void th_skip_struct(th *t) {
  if (++t->depth > TH_MAX_DEPTH) {
    t->err = 1;
    return;
  }
  int16_t last = 0;
  while (!t->err) {
    uint8_t h = th_byte(t);
    if (t->err) break;
    int type = h & 0x0f;
    if (type == CT_STOP) break;
    int delta = h >> 4;
    if (delta)
      last = (int16_t)(last + delta);
    else
      last = (int16_t)th_zigzag(t);
    th_skip(t, type);
  }
  t->depth--;
}

static void th_skip(th *t, int type) {
  if (t->err) return;
  switch (type) {
  case CT_TRUE:
  case CT_FALSE: break; /* value is in the field header */
  case CT_BYTE: th_byte(t); break;
  case CT_I16:
  case CT_I32:
  case CT_I64: th_varint(t); break;
  case CT_DOUBLE:
    if (t->end - t->p < 8)
      t->err = 1;
    else
      t->p += 8;
    break;
  case CT_BINARY: {
    size_t n;
    th_binary(t, &n);
    break;
  }
  case CT_LIST:
  case CT_SET: {
    if (++t->depth > TH_MAX_DEPTH) {
      t->err = 1;
      return;
    }
    int et;
    uint64_t n = th_list_begin(t, &et);
    for (uint64_t i = 0; i < n && !t->err; i++) {
      if (et == CT_TRUE || et == CT_FALSE)
        th_byte(t);
      else
        th_skip(t, et);
    }
    t->depth--;
    break;
  }
  case CT_MAP: {
    if (++t->depth > TH_MAX_DEPTH) {
      t->err = 1;
      return;
    }
    uint64_t n = th_varint(t);
    if (n) {
      uint8_t kv = th_byte(t);
      if (n > (uint64_t)(t->end - t->p)) t->err = 1;
      for (uint64_t i = 0; i < n && !t->err; i++) {
        int kt = kv >> 4, vt = kv & 0x0f;
        if (kt == CT_TRUE || kt == CT_FALSE)
          th_byte(t);
        else
          th_skip(t, kt);
        if (vt == CT_TRUE || vt == CT_FALSE)
          th_byte(t);
        else
          th_skip(t, vt);
      }
    }
    t->depth--;
    break;
  }
  case CT_STRUCT: th_skip_struct(t); break;
  default: t->err = 1; break;
  }
}

/* Iterates the fields of a struct: returns 1 with *id and *type for each field, 0 at STOP. */
static int th_field(th *t, int16_t *last, int16_t *id, int *type) {
  uint8_t h = th_byte(t);
  if (t->err) return 0;
  *type = h & 0x0f;
  if (*type == CT_STOP) return 0;
  int delta = h >> 4;
  if (delta)
    *last = (int16_t)(*last + delta);
  else
    *last = (int16_t)th_zigzag(t);
  *id = *last;
  return !t->err;
}

static int64_t th_int(th *t, int type) {
  if (type == CT_I32 || type == CT_I16 || type == CT_I64) return th_zigzag(t);
  if (type == CT_BYTE) return (int8_t)th_byte(t);
  th_skip(t, type);
  t->err = 1;
  return 0;
}

/* ------------------------------------------------------------------ metadata */

typedef struct pq_chunk {
  int codec;
  int type;
  int64_t num_values;
  int64_t data_page_offset, dict_page_offset, total_compressed;
  int has_dict_offset;
} pq_chunk;

typedef struct pq_rowgroup {
  int64_t num_rows;
  pq_chunk *chunks; /* n_cols */
} pq_rowgroup;

typedef struct pq_colbuf {
  int done;
  mp_pq_values v;
  uint8_t *is_null;
  int64_t *i64;
  double *f64;
  const char **str;
  uint32_t *str_len;
  size_t cap;
} pq_colbuf;

struct mp_parquet {
  char *what;
  const uint8_t *data;
  size_t size;
  mp_mmap map;
  uint8_t *owned;
  int64_t num_rows;
  size_t n_cols;
  mp_pq_column_info *cols;
  size_t n_rg;
  pq_rowgroup *rgs;
  pq_colbuf *bufs;
  mp_arena arena;
};

static const char *const type_names[] = {"BOOLEAN", "INT32",  "INT64",      "INT96",
                                         "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
const char *mp_pq_type_name(mp_pq_type t) { return (unsigned)t < 8 ? type_names[t] : "?"; }

static const char *codec_name(int c) {
  static const char *const n[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
  return (unsigned)c < 8 ? n[c] : "unknown";
}

#define BAD(pq, ...) mp_err(MP_ERR_FORMAT, __VA_ARGS__)

typedef struct schema_el {
  int type, has_type;
  int repetition;
  const uint8_t *name;
  size_t name_len;
  int num_children;
} schema_el;

static void parse_schema_el(th *t, schema_el *e) {
  memset(e, 0, sizeof *e);
  e->type = -1;
  int16_t last = 0, id;
  int type;
  if (++t->depth > TH_MAX_DEPTH) {
    t->err = 1;
    return;
  }
  while (th_field(t, &last, &id, &type)) {
    switch (id) {
    case 1:
      e->type = (int)th_int(t, type);
      e->has_type = 1;
      break;
    case 3: e->repetition = (int)th_int(t, type); break;
    case 4:
      if (type != CT_BINARY) {
        t->err = 1;
        break;
      }
      e->name = th_binary(t, &e->name_len);
      break;
    case 5: e->num_children = (int)th_int(t, type); break;
    default: th_skip(t, type);
    }
  }
  t->depth--;
}

static void parse_col_meta(th *t, pq_chunk *c) {
  int16_t last = 0, id;
  int type;
  if (++t->depth > TH_MAX_DEPTH) {
    t->err = 1;
    return;
  }
  while (th_field(t, &last, &id, &type)) {
    switch (id) {
    case 1: c->type = (int)th_int(t, type); break;
    case 4: c->codec = (int)th_int(t, type); break;
    case 5: c->num_values = th_int(t, type); break;
    case 7: c->total_compressed = th_int(t, type); break;
    case 9: c->data_page_offset = th_int(t, type); break;
    case 11:
      c->dict_page_offset = th_int(t, type);
      c->has_dict_offset = 1;
      break;
    default: th_skip(t, type);
    }
  }
  t->depth--;
}

static int parse_chunk(th *t, pq_chunk *c) {
  int16_t last = 0, id;
  int type, has_meta = 0, external = 0;
  memset(c, 0, sizeof *c);
  c->type = -1;
  if (++t->depth > TH_MAX_DEPTH) {
    t->err = 1;
    return 0;
  }
  while (th_field(t, &last, &id, &type)) {
    if (id == 1 && type == CT_BINARY) {
      size_t n;
      th_binary(t, &n);
      external = n > 0;
    } else if (id == 3 && type == CT_STRUCT) {
      parse_col_meta(t, c);
      has_meta = 1;
    } else {
      th_skip(t, type);
    }
  }
  t->depth--;
  if (external) return -1;
  return has_meta;
}

static mp_status parse_rowgroup(mp_parquet *pq, th *t, pq_rowgroup *rg, size_t idx) {
  int16_t last = 0, id;
  int type;
  size_t got = 0;
  rg->num_rows = -1;
  if (++t->depth > TH_MAX_DEPTH) {
    t->err = 1;
    return MP_OK;
  }
  while (th_field(t, &last, &id, &type)) {
    if (id == 1 && type == CT_LIST) {
      int et;
      uint64_t n = th_list_begin(t, &et);
      if (t->err) break;
      if (et != CT_STRUCT || n != pq->n_cols)
        return BAD(pq, "%s: row group %zu has %llu column chunks for %zu columns; the file is corrupt", pq->what, idx,
                   (unsigned long long)n, pq->n_cols);
      rg->chunks = mp_arena_alloc(&pq->arena, (pq->n_cols ? pq->n_cols : 1) * sizeof(pq_chunk));
      if (!rg->chunks) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
      for (uint64_t i = 0; i < n && !t->err; i++) {
        int r = parse_chunk(t, &rg->chunks[i]);
        if (r < 0)
          return mp_err(MP_ERR_UNSUPPORTED, "%s: row group %zu column %llu lives in another file; unsupported",
                        pq->what, idx, (unsigned long long)i);
        if (r == 0 && !t->err)
          return BAD(pq, "%s: row group %zu column %llu has no metadata", pq->what, idx, (unsigned long long)i);
        got++;
      }
    } else if (id == 3) {
      rg->num_rows = th_int(t, type);
    } else {
      th_skip(t, type);
    }
  }
  t->depth--;
  if (t->err) return MP_OK;
  if (got != pq->n_cols || rg->num_rows < 0)
    return BAD(pq, "%s: row group %zu lacks its columns or row count; the file is corrupt", pq->what, idx);
  return MP_OK;
}

static mp_status parse_footer(mp_parquet *pq, const uint8_t *meta, size_t len) {
  th t = {meta, meta + len, 0, 0};
  int16_t last = 0, id;
  int type;
  int have_schema = 0, have_rows = 0, have_rg = 0;
  while (th_field(&t, &last, &id, &type)) {
    if (id == 2 && type == CT_LIST) {
      int et;
      uint64_t n = th_list_begin(&t, &et);
      if (t.err) break;
      if (et != CT_STRUCT || n < 1) return BAD(pq, "%s: Parquet schema is empty or malformed", pq->what);
      if (n - 1 > PQ_MAX_COLUMNS)
        return mp_err(MP_ERR_UNSUPPORTED, "%s: too many columns (%llu)", pq->what, (unsigned long long)(n - 1));
      schema_el root;
      parse_schema_el(&t, &root);
      if (t.err) break;
      if (root.num_children < 0 || (uint64_t)root.num_children != n - 1) {
        return mp_err(MP_ERR_UNSUPPORTED,
                      "%s: nested schema (the root has %d children among %llu schema elements); only flat tables "
                      "of plain columns are supported",
                      pq->what, root.num_children, (unsigned long long)n);
      }
      pq->n_cols = (size_t)(n - 1);
      pq->cols = mp_arena_alloc(&pq->arena, (pq->n_cols ? pq->n_cols : 1) * sizeof(mp_pq_column_info));
      if (!pq->cols) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
      for (size_t i = 0; i < pq->n_cols && !t.err; i++) {
        schema_el e;
        parse_schema_el(&t, &e);
        if (t.err) break;
        char *nm = mp_arena_strndup(&pq->arena, e.name ? (const char *)e.name : "", e.name_len);
        if (!nm) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
        if (e.num_children > 0 || !e.has_type)
          return mp_err(MP_ERR_UNSUPPORTED,
                        "%s: column '%s' is nested (a group); only flat tables of plain columns are supported — "
                        "flatten it (e.g. pyarrow Table.flatten()) or export the split to JSON Lines",
                        pq->what, nm);
        if (e.repetition == 2)
          return mp_err(MP_ERR_UNSUPPORTED,
                        "%s: column '%s' is repeated (a list); only flat tables of plain columns are supported",
                        pq->what, nm);
        if (e.repetition < 0 || e.repetition > 2 || e.type < 0 || e.type > 7)
          return BAD(pq, "%s: column '%s' has an invalid type or repetition", pq->what, nm);
        pq->cols[i].name = nm;
        pq->cols[i].type = (mp_pq_type)e.type;
        pq->cols[i].optional = e.repetition == 1;
      }
      have_schema = 1;
    } else if (id == 3) {
      pq->num_rows = th_int(&t, type);
      have_rows = 1;
    } else if (id == 4 && type == CT_LIST) {
      if (!have_schema) return BAD(pq, "%s: row groups before the schema; the file is corrupt", pq->what);
      int et;
      uint64_t n = th_list_begin(&t, &et);
      if (t.err) break;
      if (et != CT_STRUCT || n > PQ_MAX_ROW_GROUPS) return BAD(pq, "%s: malformed row group list", pq->what);
      pq->n_rg = (size_t)n;
      pq->rgs = mp_arena_alloc(&pq->arena, (n ? n : 1) * sizeof(pq_rowgroup));
      if (!pq->rgs) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
      for (size_t i = 0; i < n && !t.err; i++)
        MP_TRY(parse_rowgroup(pq, &t, &pq->rgs[i], i));
      have_rg = 1;
    } else {
      th_skip(&t, type);
    }
  }
  if (t.err) return BAD(pq, "%s: Parquet footer is truncated or malformed (Thrift decoding failed)", pq->what);
  if (!have_schema || !have_rows) return BAD(pq, "%s: Parquet footer lacks the schema or the row count", pq->what);
  if (!have_rg) pq->n_rg = 0;
  if (pq->num_rows < 0 || pq->num_rows > PQ_MAX_ROWS)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: %lld rows (limit %lld)", pq->what, (long long)pq->num_rows,
                  (long long)PQ_MAX_ROWS);
  int64_t sum = 0;
  for (size_t i = 0; i < pq->n_rg; i++) {
    if (pq->rgs[i].num_rows > PQ_MAX_ROWS) return BAD(pq, "%s: row group %zu is too large", pq->what, i);
    sum += pq->rgs[i].num_rows;
    for (size_t c = 0; c < pq->n_cols; c++)
      if (pq->rgs[i].chunks[c].type != (int)pq->cols[c].type)
        return BAD(pq, "%s: row group %zu column '%s': chunk type differs from the schema", pq->what, i,
                   pq->cols[c].name);
  }
  if (sum != pq->num_rows)
    return BAD(pq, "%s: row groups hold %lld rows but the footer says %lld; the file is corrupt", pq->what,
               (long long)sum, (long long)pq->num_rows);
  return MP_OK;
}

static mp_status pq_init(mp_parquet *pq) {
  if (pq->size < 12 || memcmp(pq->data, "PAR1", 4) != 0 || memcmp(pq->data + pq->size - 4, "PAR1", 4) != 0)
    return BAD(pq, "%s: not a Parquet file (no PAR1 magic at both ends)", pq->what);
  const uint8_t *f = pq->data + pq->size - 8;
  uint32_t mlen = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 24;
  if ((size_t)mlen > pq->size - 12)
    return BAD(pq, "%s: footer length %u exceeds the file; the file is truncated", pq->what, mlen);
  MP_TRY(parse_footer(pq, pq->data + pq->size - 8 - mlen, mlen));
  pq->bufs = calloc(pq->n_cols ? pq->n_cols : 1, sizeof(pq_colbuf));
  if (!pq->bufs) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
  return MP_OK;
}

static mp_parquet *pq_new(const char *what) {
  mp_parquet *pq = calloc(1, sizeof *pq);
  if (!pq) return NULL;
  mp_arena_init(&pq->arena, 1 << 16);
  pq->what = strdup(what ? what : "parquet");
  if (!pq->what) {
    free(pq);
    return NULL;
  }
  return pq;
}

mp_status mp_parquet_open(const char *path, mp_parquet **out) {
  *out = NULL;
  mp_parquet *pq = pq_new(path);
  if (!pq) return mp_err(MP_ERR_NOMEM, "%s: out of memory", path);
  mp_status s = mp_mmap_open(path, &pq->map);
  if (s != MP_OK) {
    mp_parquet_close(pq);
    return s;
  }
  pq->data = pq->map.data;
  pq->size = pq->map.size;
  s = pq_init(pq);
  if (s != MP_OK) {
    mp_parquet_close(pq);
    return s;
  }
  *out = pq;
  return MP_OK;
}

mp_status mp_parquet_open_mem(const void *data, size_t n, const char *what, mp_parquet **out) {
  *out = NULL;
  mp_parquet *pq = pq_new(what);
  if (!pq) return mp_err(MP_ERR_NOMEM, "out of memory");
  pq->owned = malloc(n ? n : 1);
  if (!pq->owned) {
    mp_parquet_close(pq);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  }
  if (n) memcpy(pq->owned, data, n);
  pq->data = pq->owned;
  pq->size = n;
  mp_status s = pq_init(pq);
  if (s != MP_OK) {
    mp_parquet_close(pq);
    return s;
  }
  *out = pq;
  return MP_OK;
}

void mp_parquet_close(mp_parquet *pq) {
  if (!pq) return;
  if (pq->bufs) {
    for (size_t i = 0; i < pq->n_cols; i++) {
      free(pq->bufs[i].is_null);
      free(pq->bufs[i].i64);
      free(pq->bufs[i].f64);
      free(pq->bufs[i].str);
      free(pq->bufs[i].str_len);
    }
    free(pq->bufs);
  }
  if (pq->map.data) mp_mmap_close(&pq->map);
  free(pq->owned);
  mp_arena_free(&pq->arena);
  free(pq->what);
  free(pq);
}

int64_t mp_parquet_num_rows(const mp_parquet *pq) { return pq->num_rows; }
size_t mp_parquet_num_columns(const mp_parquet *pq) { return pq->n_cols; }
const mp_pq_column_info *mp_parquet_column(const mp_parquet *pq, size_t i) {
  return i < pq->n_cols ? &pq->cols[i] : NULL;
}
int mp_parquet_find_column(const mp_parquet *pq, const char *name) {
  for (size_t i = 0; i < pq->n_cols; i++)
    if (strcmp(pq->cols[i].name, name) == 0) return (int)i;
  return -1;
}

/* ------------------------------------------------------------------ pages */

typedef struct page_hdr {
  int type;
  int32_t uncompressed, compressed;
  /* v1 / v2 */
  int32_t num_values, num_nulls, num_rows;
  int encoding, def_encoding;
  int32_t def_len, rep_len;
  int is_compressed;
  int have_data, have_dict, have_v2;
} page_hdr;

static void parse_data_hdr(th *t, page_hdr *h, int v2) {
  int16_t last = 0, id;
  int type;
  if (++t->depth > TH_MAX_DEPTH) {
    t->err = 1;
    return;
  }
  while (th_field(t, &last, &id, &type)) {
    if (!v2) {
      switch (id) {
      case 1: h->num_values = (int32_t)th_int(t, type); break;
      case 2: h->encoding = (int)th_int(t, type); break;
      case 3: h->def_encoding = (int)th_int(t, type); break;
      default: th_skip(t, type);
      }
    } else {
      switch (id) {
      case 1: h->num_values = (int32_t)th_int(t, type); break;
      case 2: h->num_nulls = (int32_t)th_int(t, type); break;
      case 3: h->num_rows = (int32_t)th_int(t, type); break;
      case 4: h->encoding = (int)th_int(t, type); break;
      case 5: h->def_len = (int32_t)th_int(t, type); break;
      case 6: h->rep_len = (int32_t)th_int(t, type); break;
      case 7:
        if (type == CT_TRUE || type == CT_FALSE)
          h->is_compressed = type == CT_TRUE;
        else
          t->err = 1;
        break;
      default: th_skip(t, type);
      }
    }
  }
  t->depth--;
}

static void parse_dict_hdr(th *t, page_hdr *h) {
  int16_t last = 0, id;
  int type;
  if (++t->depth > TH_MAX_DEPTH) {
    t->err = 1;
    return;
  }
  while (th_field(t, &last, &id, &type)) {
    if (id == 1)
      h->num_values = (int32_t)th_int(t, type);
    else if (id == 2)
      h->encoding = (int)th_int(t, type);
    else
      th_skip(t, type);
  }
  t->depth--;
}

static void parse_page_hdr(th *t, page_hdr *h) {
  memset(h, 0, sizeof *h);
  h->type = -1;
  h->is_compressed = 1;
  int16_t last = 0, id;
  int type;
  while (th_field(t, &last, &id, &type)) {
    switch (id) {
    case 1: h->type = (int)th_int(t, type); break;
    case 2: h->uncompressed = (int32_t)th_int(t, type); break;
    case 3: h->compressed = (int32_t)th_int(t, type); break;
    case 5:
      if (type != CT_STRUCT) {
        t->err = 1;
        break;
      }
      parse_data_hdr(t, h, 0);
      h->have_data = 1;
      break;
    case 7:
      if (type != CT_STRUCT) {
        t->err = 1;
        break;
      }
      parse_dict_hdr(t, h);
      h->have_dict = 1;
      break;
    case 8:
      if (type != CT_STRUCT) {
        t->err = 1;
        break;
      }
      parse_data_hdr(t, h, 1);
      h->have_v2 = 1;
      break;
    default: th_skip(t, type);
    }
  }
}

/* Decompresses src into a fresh buffer of exactly `want` bytes. */
static mp_status decompress(mp_parquet *pq, int codec, const uint8_t *src, size_t n, size_t want, uint8_t **out,
                            const char *where) {
  *out = NULL;
  if (want > PQ_MAX_PAGE)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: %s: page of %zu bytes is too large", pq->what, where, want);
  uint8_t *dst = malloc(want ? want : 1);
  if (!dst) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
  switch (codec) {
  case 0:
    if (n != want) {
      free(dst);
      return BAD(pq, "%s: %s: uncompressed page size %zu differs from its stored size %zu", pq->what, where, want, n);
    }
    if (n) memcpy(dst, src, n);
    break;
  case 1: {
    size_t ulen = 0;
    if (snappy_uncompressed_length((const char *)src, n, &ulen) != SNAPPY_OK || ulen != want) {
      free(dst);
      return BAD(pq, "%s: %s: corrupt Snappy page (length header)", pq->what, where);
    }
    size_t got = want;
    if (snappy_uncompress((const char *)src, n, (char *)dst, &got) != SNAPPY_OK || got != want) {
      free(dst);
      return BAD(pq, "%s: %s: corrupt Snappy page", pq->what, where);
    }
    break;
  }
  case 2: {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) {
      free(dst);
      return mp_err(MP_ERR_NOMEM, "%s: zlib initialisation failed", pq->what);
    }
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)want;
    int r = Z_OK;
    while (r == Z_OK && z.avail_out > 0) {
      r = inflate(&z, Z_FINISH);
      if (r == Z_STREAM_END && z.avail_in > 0 && z.avail_out > 0) { /* concatenated gzip members */
        if (inflateReset(&z) != Z_OK) break;
        r = Z_OK;
      } else if (r == Z_BUF_ERROR && z.avail_in == 0) {
        break;
      }
    }
    size_t got = want - z.avail_out;
    inflateEnd(&z);
    if ((r != Z_STREAM_END && r != Z_OK) || got != want) {
      free(dst);
      return BAD(pq, "%s: %s: corrupt gzip page (%zu of %zu bytes)", pq->what, where, got, want);
    }
    break;
  }
  case 6: {
    size_t r = ZSTD_decompress(dst, want, src, n);
    if (ZSTD_isError(r) || r != want) {
      free(dst);
      return BAD(pq, "%s: %s: corrupt zstd page%s%s", pq->what, where, ZSTD_isError(r) ? ": " : "",
                 ZSTD_isError(r) ? ZSTD_getErrorName(r) : "");
    }
    break;
  }
  default:
    free(dst);
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s: %s: compression %s is not supported (use none, snappy, gzip or zstd, e.g. "
                  "pyarrow.parquet.write_table(..., compression='zstd'))",
                  pq->what, where, codec_name(codec));
  }
  *out = dst;
  return MP_OK;
}

/* RLE / bit-packed hybrid decoder of `count` values of bit width w (0..32) into out. */
static int rle_decode(const uint8_t *p, size_t n, int w, uint32_t *out, size_t count) {
  size_t pos = 0, got = 0;
  size_t vbytes = (size_t)(w + 7) / 8;
  while (got < count) {
    uint64_t hdr = 0;
    int shift = 0;
    for (;;) {
      if (pos >= n || shift > 35) return -1;
      uint8_t b = p[pos++];
      hdr |= (uint64_t)(b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    if (hdr & 1) { /* bit-packed: (hdr>>1) groups of 8 values, LSB first */
      uint64_t groups = hdr >> 1;
      if (groups == 0) return -1;
      uint64_t take = groups * 8;
      if (take > count - got) take = count - got;
      uint64_t need = (take * (uint64_t)w + 7) / 8;
      if (need > n - pos) return -1;
      uint64_t bit = 0;
      for (uint64_t i = 0; i < take; i++) {
        uint32_t v = 0;
        for (int b = 0; b < w; b++, bit++)
          v |= (uint32_t)((p[pos + (bit >> 3)] >> (bit & 7)) & 1) << b;
        out[got++] = v;
      }
      uint64_t run_bytes = groups * (uint64_t)w;
      pos += (size_t)(run_bytes <= n - pos ? run_bytes : n - pos);
    } else {
      uint64_t run = hdr >> 1;
      if (vbytes > n - pos) return -1;
      uint32_t v = 0;
      for (size_t b = 0; b < vbytes; b++)
        v |= (uint32_t)p[pos + b] << (8 * b);
      pos += vbytes;
      if (w < 32 && (v >> w)) return -1;
      if (run == 0) return -1;
      for (uint64_t i = 0; i < run && got < count; i++)
        out[got++] = v;
    }
  }
  return 0;
}

/* Output growth */
static mp_status buf_reserve(mp_parquet *pq, pq_colbuf *b, mp_pq_type type, size_t need) {
  if (need <= b->cap) return MP_OK;
  if (need > (size_t)PQ_MAX_ROWS)
    return BAD(pq, "%s: more than %lld values in a column", pq->what, (long long)PQ_MAX_ROWS);
  size_t nc = b->cap ? b->cap : 1024;
  while (nc < need)
    nc *= 2;
  if (nc > (size_t)PQ_MAX_ROWS) nc = (size_t)PQ_MAX_ROWS;
  uint8_t *isn = realloc(b->is_null, nc);
  if (!isn) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
  b->is_null = isn;
  if (type == MP_PQ_BYTE_ARRAY) {
    const char **s = realloc(b->str, nc * sizeof *s);
    if (!s) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
    b->str = s;
    uint32_t *l = realloc(b->str_len, nc * sizeof *l);
    if (!l) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
    b->str_len = l;
  } else if (type == MP_PQ_FLOAT || type == MP_PQ_DOUBLE) {
    double *f = realloc(b->f64, nc * sizeof *f);
    if (!f) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
    b->f64 = f;
  } else {
    int64_t *i = realloc(b->i64, nc * sizeof *i);
    if (!i) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
    b->i64 = i;
  }
  b->cap = nc;
  return MP_OK;
}

/* A decoded set of values (dictionary or page values), type-specific arrays. */
typedef struct vals {
  size_t n;
  int64_t *i64;
  double *f64;
  const char **str;
  uint32_t *len;
} vals;

static void vals_free(vals *v) {
  free(v->i64);
  free(v->f64);
  free(v->str);
  free(v->len);
  memset(v, 0, sizeof *v);
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* PLAIN decoding of `count` values. */
static mp_status decode_plain(mp_parquet *pq, mp_pq_type type, const uint8_t *p, size_t n, size_t count, vals *v,
                              const char *where) {
  memset(v, 0, sizeof *v);
  size_t width = type == MP_PQ_INT32 || type == MP_PQ_FLOAT ? 4 : type == MP_PQ_INT64 || type == MP_PQ_DOUBLE ? 8 : 0;
  if (type == MP_PQ_BOOLEAN) {
    if (count > n * 8) return BAD(pq, "%s: %s: %zu booleans need more than %zu bytes", pq->what, where, count, n);
  } else if (width) {
    if (count > n / width)
      return BAD(pq, "%s: %s: %zu values need %zu bytes, page has %zu", pq->what, where, count, count * width, n);
  } else if (type == MP_PQ_BYTE_ARRAY) {
    if (count > n / 4) return BAD(pq, "%s: %s: %zu strings cannot fit %zu bytes", pq->what, where, count, n);
  } else {
    return mp_err(MP_ERR_UNSUPPORTED, "%s: %s: physical type %s is not supported", pq->what, where,
                  mp_pq_type_name(type));
  }
  size_t alloc = count ? count : 1;
  if (type == MP_PQ_BYTE_ARRAY) {
    v->str = malloc(alloc * sizeof *v->str);
    v->len = malloc(alloc * sizeof *v->len);
    if (!v->str || !v->len) goto oom;
    size_t pos = 0;
    for (size_t i = 0; i < count; i++) {
      if (n - pos < 4) goto trunc;
      uint32_t l = le32(p + pos);
      pos += 4;
      if (l > n - pos) goto trunc;
      char *s = mp_arena_strndup(&pq->arena, (const char *)p + pos, l);
      if (!s) goto oom;
      v->str[i] = s;
      v->len[i] = l;
      pos += l;
    }
  } else if (type == MP_PQ_FLOAT || type == MP_PQ_DOUBLE) {
    v->f64 = malloc(alloc * sizeof *v->f64);
    if (!v->f64) goto oom;
    for (size_t i = 0; i < count; i++) {
      if (type == MP_PQ_FLOAT) {
        uint32_t u = le32(p + 4 * i);
        float f;
        memcpy(&f, &u, 4);
        v->f64[i] = f;
      } else {
        uint64_t u = le64(p + 8 * i);
        double d;
        memcpy(&d, &u, 8);
        v->f64[i] = d;
      }
    }
  } else {
    v->i64 = malloc(alloc * sizeof *v->i64);
    if (!v->i64) goto oom;
    for (size_t i = 0; i < count; i++) {
      if (type == MP_PQ_BOOLEAN)
        v->i64[i] = (p[i >> 3] >> (i & 7)) & 1;
      else if (type == MP_PQ_INT32)
        v->i64[i] = (int32_t)le32(p + 4 * i);
      else
        v->i64[i] = (int64_t)le64(p + 8 * i);
    }
  }
  v->n = count;
  return MP_OK;
trunc:
  vals_free(v);
  return BAD(pq, "%s: %s: BYTE_ARRAY value runs past the end of the page", pq->what, where);
oom:
  vals_free(v);
  return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
}

/* Appends one page's rows: levels (NULL = all present) and the non-null values. */
static mp_status append_rows(mp_parquet *pq, pq_colbuf *b, mp_pq_type type, const uint32_t *def, size_t rows,
                             const vals *dict, const uint32_t *idx, const vals *plain, size_t n_present,
                             const char *where) {
  MP_TRY(buf_reserve(pq, b, type, b->v.n + rows));
  size_t k = 0;
  for (size_t r = 0; r < rows; r++) {
    size_t o = b->v.n + r;
    int present = def ? def[r] == 1 : 1;
    b->is_null[o] = !present;
    if (!present) {
      if (type == MP_PQ_BYTE_ARRAY) {
        b->str[o] = NULL;
        b->str_len[o] = 0;
      } else if (type == MP_PQ_FLOAT || type == MP_PQ_DOUBLE) {
        b->f64[o] = 0;
      } else {
        b->i64[o] = 0;
      }
      continue;
    }
    if (k >= n_present) return BAD(pq, "%s: %s: fewer values than present rows", pq->what, where);
    const vals *src = plain;
    size_t si = k;
    if (dict) {
      if (idx[k] >= dict->n)
        return BAD(pq, "%s: %s: dictionary index %u out of range (dictionary has %zu entries)", pq->what, where, idx[k],
                   dict->n);
      src = dict;
      si = idx[k];
    }
    k++;
    if (type == MP_PQ_BYTE_ARRAY) {
      b->str[o] = src->str[si];
      b->str_len[o] = src->len[si];
    } else if (type == MP_PQ_FLOAT || type == MP_PQ_DOUBLE) {
      b->f64[o] = src->f64[si];
    } else {
      b->i64[o] = src->i64[si];
    }
  }
  b->v.n += rows;
  return MP_OK;
}

static mp_status decode_values(mp_parquet *pq, pq_colbuf *b, mp_pq_type type, int encoding, const uint8_t *p, size_t n,
                               const uint32_t *def, size_t rows, size_t present, const vals *dict, const char *where) {
  mp_status s = MP_OK;
  if (encoding == 0) { /* PLAIN */
    vals v;
    MP_TRY(decode_plain(pq, type, p, n, present, &v, where));
    s = append_rows(pq, b, type, def, rows, NULL, NULL, &v, present, where);
    vals_free(&v);
    return s;
  }
  if (encoding == 2 || encoding == 8) { /* PLAIN_DICTIONARY / RLE_DICTIONARY */
    if (!dict) return BAD(pq, "%s: %s: dictionary-encoded page without a dictionary page", pq->what, where);
    if (present && n < 1) return BAD(pq, "%s: %s: dictionary indices missing", pq->what, where);
    int w = present ? p[0] : 0;
    if (w > 32) return BAD(pq, "%s: %s: dictionary index bit width %d > 32", pq->what, where, w);
    uint32_t *idx = malloc((present ? present : 1) * sizeof *idx);
    if (!idx) return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
    if (present && rle_decode(p + 1, n - 1, w, idx, present) != 0) {
      free(idx);
      return BAD(pq, "%s: %s: corrupt RLE dictionary indices", pq->what, where);
    }
    s = append_rows(pq, b, type, def, rows, dict, idx, NULL, present, where);
    free(idx);
    return s;
  }
  if (encoding == 3 && type == MP_PQ_BOOLEAN) { /* RLE booleans: 4-byte length + hybrid, width 1 */
    if (n < 4 || le32(p) > n - 4) return BAD(pq, "%s: %s: corrupt RLE boolean values", pq->what, where);
    uint32_t *bits = malloc((present ? present : 1) * sizeof *bits);
    vals v;
    memset(&v, 0, sizeof v);
    v.i64 = malloc((present ? present : 1) * sizeof *v.i64);
    if (!bits || !v.i64) {
      free(bits);
      vals_free(&v);
      return mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
    }
    if (present && rle_decode(p + 4, le32(p), 1, bits, present) != 0) {
      free(bits);
      vals_free(&v);
      return BAD(pq, "%s: %s: corrupt RLE boolean values", pq->what, where);
    }
    for (size_t i = 0; i < present; i++)
      v.i64[i] = bits[i];
    v.n = present;
    s = append_rows(pq, b, type, def, rows, NULL, NULL, &v, present, where);
    free(bits);
    vals_free(&v);
    return s;
  }
  return mp_err(MP_ERR_UNSUPPORTED,
                "%s: %s: value encoding %d is not supported (PLAIN and dictionary encodings are; rewrite the file "
                "with pyarrow defaults)",
                pq->what, where, encoding);
}

static mp_status read_chunk(mp_parquet *pq, size_t col, size_t rgi, pq_colbuf *b) {
  const pq_chunk *c = &pq->rgs[rgi].chunks[col];
  const mp_pq_column_info *ci = &pq->cols[col];
  int64_t rows_want = pq->rgs[rgi].num_rows;
  if (rows_want == 0) return MP_OK;
  int64_t start = c->data_page_offset;
  if (c->has_dict_offset && c->dict_page_offset > 0 && c->dict_page_offset < start) start = c->dict_page_offset;
  if (start < 4 || (uint64_t)start >= pq->size - 8)
    return BAD(pq, "%s: column '%s' row group %zu: page offset %lld outside the file", pq->what, ci->name, rgi,
               (long long)start);
  int64_t end = (int64_t)pq->size - 8;
  if (c->total_compressed > 0 && c->total_compressed <= end - start) end = start + c->total_compressed;
  size_t pos = (size_t)start;
  vals dict;
  memset(&dict, 0, sizeof dict);
  int have_dict = 0;
  int64_t rows_got = 0;
  mp_status s = MP_OK;
  int page_no = 0;
  uint32_t *def = NULL;
  uint8_t *buf = NULL;
  while (rows_got < rows_want) {
    page_no++;
    char where[300];
    snprintf(where, sizeof where, "column '%.200s' row group %zu page %d", ci->name, rgi, page_no);
    if (pos >= (size_t)end) {
      s = BAD(pq, "%s: %s: column chunk ends after %lld of %lld rows; the file is truncated", pq->what, where,
              (long long)rows_got, (long long)rows_want);
      break;
    }
    th t = {pq->data + pos, pq->data + end, 0, 0};
    page_hdr h;
    parse_page_hdr(&t, &h);
    if (t.err || h.compressed < 0 || h.uncompressed < 0 || (size_t)h.compressed > (size_t)(t.end - t.p)) {
      s = BAD(pq, "%s: %s: malformed page header", pq->what, where);
      break;
    }
    const uint8_t *body = t.p;
    size_t blen = (size_t)h.compressed;
    pos = (size_t)(body - pq->data) + blen;
    free(buf);
    buf = NULL;
    free(def);
    def = NULL;
    if (h.type == 2) { /* dictionary page */
      if (!h.have_dict || have_dict || h.num_values < 0) {
        s = BAD(pq, "%s: %s: unexpected or malformed dictionary page", pq->what, where);
        break;
      }
      if (h.encoding != 0 && h.encoding != 2) {
        s = mp_err(MP_ERR_UNSUPPORTED, "%s: %s: dictionary encoding %d unsupported", pq->what, where, h.encoding);
        break;
      }
      if ((s = decompress(pq, c->codec, body, blen, (size_t)h.uncompressed, &buf, where)) != MP_OK) break;
      if ((s = decode_plain(pq, ci->type, buf, (size_t)h.uncompressed, (size_t)h.num_values, &dict, where)) != MP_OK)
        break;
      have_dict = 1;
      continue;
    }
    if (h.type == 1) continue; /* index page: skip */
    if (h.type != 0 && h.type != 3) {
      s = mp_err(MP_ERR_UNSUPPORTED, "%s: %s: page type %d unsupported", pq->what, where, h.type);
      break;
    }
    if ((h.type == 0 && !h.have_data) || (h.type == 3 && !h.have_v2) || h.num_values < 0 ||
        h.num_values > rows_want - rows_got) {
      s = BAD(pq, "%s: %s: malformed data page header (%d values, %lld rows left)", pq->what, where, h.num_values,
              (long long)(rows_want - rows_got));
      break;
    }
    size_t rows = (size_t)h.num_values;
    const uint8_t *vp;
    size_t vn;
    size_t present = rows;
    if (h.type == 0) {
      if ((s = decompress(pq, c->codec, body, blen, (size_t)h.uncompressed, &buf, where)) != MP_OK) break;
      vp = buf;
      vn = (size_t)h.uncompressed;
      if (ci->optional) {
        if (h.def_encoding != 3) {
          s = mp_err(MP_ERR_UNSUPPORTED, "%s: %s: definition level encoding %d unsupported (RLE expected)", pq->what,
                     where, h.def_encoding);
          break;
        }
        if (vn < 4 || le32(vp) > vn - 4) {
          s = BAD(pq, "%s: %s: definition levels run past the page", pq->what, where);
          break;
        }
        uint32_t dl = le32(vp);
        def = malloc((rows ? rows : 1) * sizeof *def);
        if (!def) {
          s = mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
          break;
        }
        if (rows && rle_decode(vp + 4, dl, 1, def, rows) != 0) {
          s = BAD(pq, "%s: %s: corrupt definition levels", pq->what, where);
          break;
        }
        vp += 4 + dl;
        vn -= 4 + (size_t)dl;
      }
    } else {
      if (h.def_len < 0 || h.rep_len != 0 || (size_t)h.def_len > blen || h.uncompressed < h.def_len) {
        s = BAD(pq, "%s: %s: malformed v2 level lengths", pq->what, where);
        break;
      }
      if (ci->optional) {
        def = malloc((rows ? rows : 1) * sizeof *def);
        if (!def) {
          s = mp_err(MP_ERR_NOMEM, "%s: out of memory", pq->what);
          break;
        }
        if (rows && rle_decode(body, (size_t)h.def_len, 1, def, rows) != 0) {
          s = BAD(pq, "%s: %s: corrupt definition levels", pq->what, where);
          break;
        }
      } else if (h.def_len != 0) {
        s = BAD(pq, "%s: %s: definition levels on a required column", pq->what, where);
        break;
      }
      size_t want = (size_t)h.uncompressed - (size_t)h.def_len;
      int codec = h.is_compressed ? c->codec : 0;
      if ((s = decompress(pq, codec, body + h.def_len, blen - (size_t)h.def_len, want, &buf, where)) != MP_OK) break;
      vp = buf;
      vn = want;
    }
    if (def) {
      present = 0;
      for (size_t r = 0; r < rows; r++) {
        if (def[r] > 1) {
          s = BAD(pq, "%s: %s: definition level %u > 1 in a flat column", pq->what, where, def[r]);
          break;
        }
        present += def[r];
      }
      if (s != MP_OK) break;
      if (h.type == 3 && (size_t)h.num_nulls != rows - present) {
        s = BAD(pq, "%s: %s: null count %d differs from the definition levels (%zu)", pq->what, where, h.num_nulls,
                rows - present);
        break;
      }
    }
    s = decode_values(pq, b, ci->type, h.encoding, vp, vn, def, rows, present, have_dict ? &dict : NULL, where);
    if (s != MP_OK) break;
    rows_got += (int64_t)rows;
  }
  free(buf);
  free(def);
  vals_free(&dict);
  return s;
}

mp_status mp_parquet_read_column(mp_parquet *pq, size_t i, mp_pq_values *out) {
  memset(out, 0, sizeof *out);
  if (i >= pq->n_cols) return mp_err(MP_ERR_INVALID_ARG, "%s: no column %zu", pq->what, i);
  pq_colbuf *b = &pq->bufs[i];
  const mp_pq_column_info *ci = &pq->cols[i];
  if (!b->done) {
    if (ci->type == MP_PQ_INT96 || ci->type == MP_PQ_FIXED_LEN_BYTE_ARRAY)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: column '%s' has physical type %s (unsupported)", pq->what, ci->name,
                    mp_pq_type_name(ci->type));
    b->v.n = 0;
    MP_TRY(buf_reserve(pq, b, ci->type, 1));
    for (size_t r = 0; r < pq->n_rg; r++) {
      mp_status s = read_chunk(pq, i, r, b);
      if (s != MP_OK) {
        b->v.n = 0;
        return s;
      }
    }
    b->v.type = ci->type;
    b->v.is_null = b->is_null;
    b->v.i64 = b->i64;
    b->v.f64 = b->f64;
    b->v.str = b->str;
    b->v.str_len = b->str_len;
    b->done = 1;
  }
  *out = b->v;
  return MP_OK;
}
