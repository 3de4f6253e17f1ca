/* Streaming safetensors writer: header first from the declared tensors, then the data tensor by
 * tensor, so a conversion never holds the model in memory (see st_stream.h). */
#include "quant/st_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "core/tensor.h"

typedef struct st_ent {
  char *name;
  mp_dtype dtype;
  int ndim;
  int64_t shape[MP_MAX_DIMS];
  uint64_t nbytes, offset, written;
} st_ent;

struct mp_st_stream {
  st_ent *e;
  size_t n, cap;
  char **meta; /* key, value pairs */
  size_t n_meta;
  mp_sb header;
  int laid_out, begun, finished;
  uint64_t data_bytes;
  mp_afile f;
  uint64_t data_start;
};

mp_status mp_st_stream_create(mp_st_stream **out) {
  *out = calloc(1, sizeof **out);
  if (!*out) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_sb_init(&(*out)->header);
  return MP_OK;
}

void mp_st_stream_free(mp_st_stream *s) {
  if (!s) return;
  if (s->begun && !s->finished) mp_afile_abort(&s->f);
  for (size_t i = 0; i < s->n; i++)
    free(s->e[i].name);
  free(s->e);
  for (size_t i = 0; i < 2 * s->n_meta; i++)
    free(s->meta[i]);
  free(s->meta);
  mp_sb_free(&s->header);
  free(s);
}

mp_status mp_st_stream_set_metadata(mp_st_stream *s, const char *key, const char *value) {
  if (s->laid_out) return mp_err(MP_ERR_INTERNAL, "safetensors stream: metadata after layout");
  for (size_t i = 0; i < s->n_meta; i++)
    if (strcmp(s->meta[2 * i], key) == 0) {
      char *v = strdup(value);
      if (!v) return mp_err(MP_ERR_NOMEM, "out of memory");
      free(s->meta[2 * i + 1]);
      s->meta[2 * i + 1] = v;
      return MP_OK;
    }
  char **m = realloc(s->meta, (s->n_meta + 1) * 2 * sizeof *m);
  if (!m) return mp_err(MP_ERR_NOMEM, "out of memory");
  s->meta = m;
  m[2 * s->n_meta] = strdup(key);
  m[2 * s->n_meta + 1] = strdup(value);
  s->n_meta++;
  if (!m[2 * s->n_meta - 2] || !m[2 * s->n_meta - 1]) return mp_err(MP_ERR_NOMEM, "out of memory");
  return MP_OK;
}

mp_status mp_st_stream_add(mp_st_stream *s, const char *name, mp_dtype dtype, int ndim, const int64_t *shape,
                           size_t *index) {
  if (s->laid_out) return mp_err(MP_ERR_INTERNAL, "safetensors stream: tensor %s added after layout", name);
  if (ndim < 0 || ndim > MP_MAX_DIMS || mp_dtype_size(dtype) == 0 || !*name)
    return mp_err(MP_ERR_INVALID_ARG, "safetensors stream: bad tensor '%s'", name);
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->e[i].name, name) == 0)
      return mp_err(MP_ERR_INVALID_ARG, "safetensors stream: duplicate tensor name '%s'", name);
  uint64_t nb = mp_dtype_size(dtype);
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0 || (shape[d] && nb > UINT64_MAX / 2 / (uint64_t)shape[d]))
      return mp_err(MP_ERR_INVALID_ARG, "safetensors stream: bad shape for '%s'", name);
    nb *= (uint64_t)shape[d];
  }
  if (s->n == s->cap) {
    size_t c = s->cap ? 2 * s->cap : 64;
    st_ent *e = realloc(s->e, c * sizeof *e);
    if (!e) return mp_err(MP_ERR_NOMEM, "out of memory");
    s->e = e;
    s->cap = c;
  }
  st_ent *e = &s->e[s->n];
  memset(e, 0, sizeof *e);
  e->name = strdup(name);
  if (!e->name) return mp_err(MP_ERR_NOMEM, "out of memory");
  e->dtype = dtype;
  e->ndim = ndim;
  if (ndim) memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
  e->nbytes = nb;
  if (index) *index = s->n;
  s->n++;
  return MP_OK;
}

size_t mp_st_stream_count(const mp_st_stream *s) { return s ? s->n : 0; }

static mp_status layout(mp_st_stream *s) {
  if (s->laid_out) return MP_OK;
  /* data order: element size 8, 4, 2, 1, insertion order within each */
  size_t *order = malloc((s->n ? s->n : 1) * sizeof *order);
  if (!order) return mp_err(MP_ERR_NOMEM, "out of memory");
  size_t k = 0;
  uint64_t off = 0;
  for (size_t esz = 8; esz >= 1; esz /= 2)
    for (size_t i = 0; i < s->n; i++)
      if (mp_dtype_size(s->e[i].dtype) == esz) {
        order[k++] = i;
        s->e[i].offset = off;
        off += s->e[i].nbytes;
      }
  s->data_bytes = off;
  mp_sb *h = &s->header;
  mp_sb_putc(h, '{');
  int first = 1;
  if (s->n_meta) {
    mp_sb_puts(h, "\"__metadata__\":{");
    for (size_t i = 0; i < s->n_meta; i++) {
      if (i) mp_sb_putc(h, ',');
      mp_sb_json_str(h, s->meta[2 * i], strlen(s->meta[2 * i]));
      mp_sb_putc(h, ':');
      mp_sb_json_str(h, s->meta[2 * i + 1], strlen(s->meta[2 * i + 1]));
    }
    mp_sb_putc(h, '}');
    first = 0;
  }
  for (size_t j = 0; j < k; j++) {
    const st_ent *e = &s->e[order[j]];
    if (!first) mp_sb_putc(h, ',');
    first = 0;
    mp_sb_json_str(h, e->name, strlen(e->name));
    mp_sb_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", mp_dtype_name(e->dtype));
    for (int d = 0; d < e->ndim; d++)
      mp_sb_printf(h, d ? ",%lld" : "%lld", (long long)e->shape[d]);
    mp_sb_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)e->offset,
                 (unsigned long long)(e->offset + e->nbytes));
  }
  mp_sb_putc(h, '}');
  while (h->len % 8)
    mp_sb_putc(h, ' ');
  free(order);
  if (h->oom) return mp_err(MP_ERR_NOMEM, "out of memory");
  s->laid_out = 1;
  s->data_start = 8 + h->len;
  return MP_OK;
}

uint64_t mp_st_stream_data_bytes(const mp_st_stream *s) {
  uint64_t t = 0;
  for (size_t i = 0; i < s->n; i++)
    t += s->e[i].nbytes;
  return t;
}

uint64_t mp_st_stream_file_bytes(const mp_st_stream *s) {
  if (layout((mp_st_stream *)s) != MP_OK) return 0;
  return s->data_start + s->data_bytes;
}

mp_status mp_st_stream_begin(mp_st_stream *s, const char *path) {
  if (s->begun) return mp_err(MP_ERR_INTERNAL, "safetensors stream: begun twice");
  MP_TRY(layout(s));
  MP_TRY(mp_afile_open(&s->f, path));
  s->begun = 1;
  uint8_t len[8];
  uint64_t hl = s->header.len;
  for (int i = 0; i < 8; i++)
    len[i] = (uint8_t)(hl >> (8 * i));
  MP_TRY(mp_afile_write(&s->f, len, 8));
  MP_TRY(mp_afile_write(&s->f, s->header.buf, s->header.len));
  if (fflush(s->f.fp) != 0) return mp_err_errno(MP_ERR_IO, "%s: write failed", path);
  /* size the file now so a short data block is never mistaken for a complete one */
  if (ftruncate(fileno(s->f.fp), (off_t)(s->data_start + s->data_bytes)) != 0)
    return mp_err_errno(MP_ERR_IO, "%s: cannot size the file", path);
  return MP_OK;
}

mp_status mp_st_stream_put(mp_st_stream *s, size_t index, uint64_t offset, const void *data, size_t n) {
  if (!s->begun || s->finished || index >= s->n) return mp_err(MP_ERR_INTERNAL, "safetensors stream: bad put");
  st_ent *e = &s->e[index];
  if (offset > e->nbytes || n > e->nbytes - offset)
    return mp_err(MP_ERR_INTERNAL, "safetensors stream: %s: write past the tensor's end", e->name);
  const uint8_t *p = data;
  uint64_t pos = s->data_start + e->offset + offset;
  size_t left = n;
  while (left) {
    ssize_t w = pwrite(fileno(s->f.fp), p, left, (off_t)pos);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      s->f.failed = 1;
      return mp_err_errno(MP_ERR_IO, "%s: write failed", s->f.path);
    }
    p += w;
    pos += (uint64_t)w;
    left -= (size_t)w;
  }
  e->written += n;
  return MP_OK;
}

mp_status mp_st_stream_finish(mp_st_stream *s) {
  if (!s->begun || s->finished) return mp_err(MP_ERR_INTERNAL, "safetensors stream: finish without begin");
  for (size_t i = 0; i < s->n; i++)
    if (s->e[i].written != s->e[i].nbytes)
      return mp_err(MP_ERR_INTERNAL, "safetensors stream: tensor %s: %llu of %llu bytes written", s->e[i].name,
                    (unsigned long long)s->e[i].written, (unsigned long long)s->e[i].nbytes);
  s->finished = 1;
  return mp_afile_commit(&s->f);
}
