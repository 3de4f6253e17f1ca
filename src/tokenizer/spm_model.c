/* SentencePiece ModelProto reader, HF conversion and SentencePiece-compatible encoder. */
#include "tokenizer/spm_model.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/utf8.h"

/* ---- protobuf wire format ------------------------------------------------------------------ */

typedef struct pb_ctx {
  const uint8_t *d; /* whole file */
  size_t n;
  const char *what;
  mp_spm_model *m;
} pb_ctx;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

static mp_status pb_fail(const pb_ctx *c, const char *field, size_t off, const char *msg) {
  return mp_err(MP_ERR_FORMAT, "%s: malformed SentencePiece model: %s at byte offset %zu: %s", c->what, field, off,
                msg);
}

static int read_varint(const uint8_t *d, size_t end, size_t *i, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*i >= end) return -1;
    uint8_t b = d[(*i)++];
    if (shift == 63 && (b & 0x7E)) return -1; /* more than 64 bits */
    r |= (uint64_t)(b & 0x7F) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

/* One field of a message in d[*i..end): tag, and its value (varint / fixed / span). */
typedef struct pb_field {
  uint32_t num;
  int wt;
  uint64_t v;      /* varint / fixed value */
  size_t off, len; /* WT_LEN payload */
  size_t at;       /* offset of the tag */
} pb_field;

static mp_status next_field(const pb_ctx *c, const char *msg, size_t *i, size_t end, pb_field *f) {
  f->at = *i;
  uint64_t tag;
  if (read_varint(c->d, end, i, &tag)) return pb_fail(c, msg, f->at, "truncated or overlong field tag");
  f->num = (uint32_t)(tag >> 3);
  f->wt = (int)(tag & 7);
  if (f->num == 0 || (tag >> 3) > 0x1FFFFFFF) return pb_fail(c, msg, f->at, "field number 0 or too large");
  switch (f->wt) {
  case WT_VARINT:
    if (read_varint(c->d, end, i, &f->v)) return pb_fail(c, msg, f->at, "truncated varint value");
    return MP_OK;
  case WT_I64:
    if (end - *i < 8) return pb_fail(c, msg, f->at, "truncated 64-bit value");
    f->v = 0;
    for (int k = 7; k >= 0; k--)
      f->v = f->v << 8 | c->d[*i + (size_t)k];
    *i += 8;
    return MP_OK;
  case WT_I32:
    if (end - *i < 4) return pb_fail(c, msg, f->at, "truncated 32-bit value");
    f->v =
        (uint64_t)c->d[*i] | (uint64_t)c->d[*i + 1] << 8 | (uint64_t)c->d[*i + 2] << 16 | (uint64_t)c->d[*i + 3] << 24;
    *i += 4;
    return MP_OK;
  case WT_LEN: {
    uint64_t len;
    if (read_varint(c->d, end, i, &len)) return pb_fail(c, msg, f->at, "truncated length");
    if (len > end - *i) {
      char b[160];
      snprintf(b, sizeof b, "field %u says %llu bytes but only %zu remain in the enclosing message", f->num,
               (unsigned long long)len, end - *i);
      return pb_fail(c, msg, f->at, b);
    }
    f->off = *i;
    f->len = (size_t)len;
    *i += (size_t)len;
    return MP_OK;
  }
  default: {
    char b[96];
    snprintf(b, sizeof b, "field %u has unsupported wire type %d (groups are not used by ModelProto)", f->num, f->wt);
    return pb_fail(c, msg, f->at, b);
  }
  }
}

static mp_status want(const pb_ctx *c, const char *field, const pb_field *f, int wt) {
  if (f->wt == wt) return MP_OK;
  char b[96];
  snprintf(b, sizeof b, "wire type %d where %d was expected", f->wt, wt);
  return pb_fail(c, field, f->at, b);
}

static mp_status get_str(pb_ctx *c, const char *field, const pb_field *f, const char **out, size_t *len) {
  MP_TRY(want(c, field, f, WT_LEN));
  char *s = mp_arena_strndup(&c->m->arena, (const char *)c->d + f->off, f->len);
  if (!s) return mp_err(MP_ERR_NOMEM, "%s: out of memory", c->what);
  *out = s;
  if (len) *len = f->len;
  return MP_OK;
}

static mp_status get_bool(const pb_ctx *c, const char *field, const pb_field *f, int *out) {
  MP_TRY(want(c, field, f, WT_VARINT));
  *out = f->v != 0;
  return MP_OK;
}

static mp_status get_i32(const pb_ctx *c, const char *field, const pb_field *f, int64_t *out) {
  MP_TRY(want(c, field, f, WT_VARINT));
  *out = (int64_t)(int32_t)(uint32_t)f->v; /* int32 on the wire: sign-extended 64-bit varint */
  return MP_OK;
}

static mp_status parse_piece(pb_ctx *c, size_t i, size_t end, mp_spm_piece *p, size_t idx) {
  char field[64];
  p->piece = "";
  p->len = 0;
  p->score = 0.0f;
  p->type = MP_SPM_NORMAL;
  while (i < end) {
    pb_field f;
    snprintf(field, sizeof field, "pieces[%zu]", idx);
    MP_TRY(next_field(c, field, &i, end, &f));
    if (f.num == 1) {
      snprintf(field, sizeof field, "pieces[%zu].piece", idx);
      MP_TRY(get_str(c, field, &f, &p->piece, &p->len));
    } else if (f.num == 2) {
      snprintf(field, sizeof field, "pieces[%zu].score", idx);
      MP_TRY(want(c, field, &f, WT_I32));
      uint32_t u = (uint32_t)f.v;
      memcpy(&p->score, &u, 4);
    } else if (f.num == 3) {
      snprintf(field, sizeof field, "pieces[%zu].type", idx);
      MP_TRY(want(c, field, &f, WT_VARINT));
      if (f.v < 1 || f.v > 6) {
        char b[64];
        snprintf(b, sizeof b, "unknown piece type %llu (1..6 are defined)", (unsigned long long)f.v);
        return pb_fail(c, field, f.at, b);
      }
      p->type = (int)f.v;
    }
  }
  return MP_OK;
}

static mp_status parse_trainer(pb_ctx *c, size_t i, size_t end) {
  mp_spm_model *m = c->m;
  while (i < end) {
    pb_field f;
    MP_TRY(next_field(c, "trainer_spec", &i, end, &f));
    int64_t v;
    switch (f.num) {
    case 3:
      MP_TRY(get_i32(c, "trainer_spec.model_type", &f, &v));
      if (v < 1 || v > 4) return pb_fail(c, "trainer_spec.model_type", f.at, "unknown model type (1..4)");
      m->model_type = (int)v;
      break;
    case 4: MP_TRY(get_i32(c, "trainer_spec.vocab_size", &f, &m->vocab_size)); break;
    case 24: MP_TRY(get_bool(c, "trainer_spec.treat_whitespace_as_suffix", &f, &m->treat_whitespace_as_suffix)); break;
    case 25: MP_TRY(get_bool(c, "trainer_spec.split_digits", &f, &m->split_digits)); break;
    case 35: MP_TRY(get_bool(c, "trainer_spec.byte_fallback", &f, &m->byte_fallback)); break;
    case 40: MP_TRY(get_i32(c, "trainer_spec.unk_id", &f, &m->unk_id)); break;
    case 41: MP_TRY(get_i32(c, "trainer_spec.bos_id", &f, &m->bos_id)); break;
    case 42: MP_TRY(get_i32(c, "trainer_spec.eos_id", &f, &m->eos_id)); break;
    case 43: MP_TRY(get_i32(c, "trainer_spec.pad_id", &f, &m->pad_id)); break;
    case 44: MP_TRY(get_str(c, "trainer_spec.unk_surface", &f, &m->unk_surface, NULL)); break;
    case 45: MP_TRY(get_str(c, "trainer_spec.unk_piece", &f, &m->unk_piece, NULL)); break;
    case 46: MP_TRY(get_str(c, "trainer_spec.bos_piece", &f, &m->bos_piece, NULL)); break;
    case 47: MP_TRY(get_str(c, "trainer_spec.eos_piece", &f, &m->eos_piece, NULL)); break;
    case 48: MP_TRY(get_str(c, "trainer_spec.pad_piece", &f, &m->pad_piece, NULL)); break;
    default: break; /* other training options do not affect encoding */
    }
  }
  return MP_OK;
}

static mp_status parse_normalizer(pb_ctx *c, const char *name, size_t i, size_t end, mp_spm_normalizer_spec *ns) {
  char field[64];
  while (i < end) {
    pb_field f;
    MP_TRY(next_field(c, name, &i, end, &f));
    switch (f.num) {
    case 1:
      snprintf(field, sizeof field, "%s.name", name);
      MP_TRY(get_str(c, field, &f, &ns->name, NULL));
      break;
    case 2: {
      snprintf(field, sizeof field, "%s.precompiled_charsmap", name);
      const char *s;
      size_t l;
      MP_TRY(get_str(c, field, &f, &s, &l));
      ns->charsmap = (const uint8_t *)s;
      ns->charsmap_len = l;
      break;
    }
    case 3:
      snprintf(field, sizeof field, "%s.add_dummy_prefix", name);
      MP_TRY(get_bool(c, field, &f, &ns->add_dummy_prefix));
      break;
    case 4:
      snprintf(field, sizeof field, "%s.remove_extra_whitespaces", name);
      MP_TRY(get_bool(c, field, &f, &ns->remove_extra_whitespaces));
      break;
    case 5:
      snprintf(field, sizeof field, "%s.escape_whitespaces", name);
      MP_TRY(get_bool(c, field, &f, &ns->escape_whitespaces));
      break;
    case 6:
      snprintf(field, sizeof field, "%s.normalization_rule_tsv", name);
      MP_TRY(want(c, field, &f, WT_LEN));
      ns->has_rule_tsv = 1;
      break;
    default: break;
    }
  }
  return MP_OK;
}

static void normalizer_defaults(mp_spm_normalizer_spec *ns) {
  memset(ns, 0, sizeof *ns);
  ns->name = "";
  ns->add_dummy_prefix = 1;
  ns->remove_extra_whitespaces = 1;
  ns->escape_whitespaces = 1;
}

mp_status mp_spm_model_parse(const uint8_t *data, size_t n, const char *what, mp_spm_model **out) {
  *out = NULL;
  if (!what) what = "spm.model";
  mp_spm_model *m = calloc(1, sizeof *m);
  if (!m) return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  mp_arena_init(&m->arena, 1 << 20);
  m->model_type = 1;
  m->vocab_size = 8000;
  m->unk_id = 0, m->bos_id = 1, m->eos_id = 2, m->pad_id = -1;
  m->unk_piece = "<unk>", m->bos_piece = "<s>", m->eos_piece = "</s>", m->pad_piece = "<pad>";
  m->unk_surface = " \xE2\x81\x87 ";
  normalizer_defaults(&m->normalizer);
  normalizer_defaults(&m->denormalizer);
  pb_ctx c = {data, n, what, m};
  mp_status st = MP_OK;
  /* pass 1: count pieces */
  size_t np = 0, i = 0;
  while (i < n) {
    pb_field f;
    if ((st = next_field(&c, "ModelProto", &i, n, &f)) != MP_OK) goto fail;
    if (f.num == 1) {
      if ((st = want(&c, "pieces", &f, WT_LEN)) != MP_OK) goto fail;
      np++;
    }
  }
  m->pieces = mp_arena_alloc(&m->arena, (np ? np : 1) * sizeof *m->pieces);
  if (!m->pieces) {
    st = mp_err(MP_ERR_NOMEM, "%s: out of memory for %zu pieces", what, np);
    goto fail;
  }
  int seen_norm = 0;
  i = 0;
  while (i < n) {
    pb_field f;
    if ((st = next_field(&c, "ModelProto", &i, n, &f)) != MP_OK) goto fail;
    switch (f.num) {
    case 1:
      st = parse_piece(&c, f.off, f.off + f.len, &m->pieces[m->n_pieces], m->n_pieces);
      m->n_pieces++;
      break;
    case 2:
      if ((st = want(&c, "trainer_spec", &f, WT_LEN)) == MP_OK) st = parse_trainer(&c, f.off, f.off + f.len);
      break;
    case 3:
      if ((st = want(&c, "normalizer_spec", &f, WT_LEN)) == MP_OK)
        st = parse_normalizer(&c, "normalizer_spec", f.off, f.off + f.len, &m->normalizer);
      seen_norm = 1;
      break;
    case 5:
      if ((st = want(&c, "denormalizer_spec", &f, WT_LEN)) == MP_OK)
        st = parse_normalizer(&c, "denormalizer_spec", f.off, f.off + f.len, &m->denormalizer);
      m->has_denormalizer = 1;
      break;
    default: break; /* self_test_data and unknown fields */
    }
    if (st != MP_OK) goto fail;
  }
  (void)seen_norm;
  if (m->n_pieces == 0) {
    st = mp_err(MP_ERR_FORMAT, "%s: the SentencePiece model has no pieces (is this a .model file?)", what);
    goto fail;
  }
  *out = m;
  return MP_OK;
fail:
  mp_spm_model_free(m);
  return st;
}

mp_status mp_spm_model_load(const char *path, mp_spm_model **out) {
  *out = NULL;
  char *buf;
  size_t len;
  MP_TRY(mp_read_file(path, &buf, &len, (size_t)1 << 30));
  mp_status s = mp_spm_model_parse((const uint8_t *)buf, len, path, out);
  free(buf);
  return s;
}

void mp_spm_model_free(mp_spm_model *m) {
  if (!m) return;
  mp_arena_free(&m->arena);
  free(m);
}

/* ---- Unigram --------------------------------------------------------------------------------- */

mp_status mp_spm_unigram(const mp_spm_model *m, mp_unigram_flavor flavor, int hf_byte_fallback, const char *what,
                         mp_unigram **out) {
  *out = NULL;
  if (!what) what = "spm.model";
  if (m->model_type != 1)
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s: SentencePiece model_type %d is not Unigram (1); only Unigram models are supported", what,
                  m->model_type);
  size_t n = m->n_pieces;
  const char **p = malloc(n * sizeof *p);
  size_t *l = malloc(n * sizeof *l);
  double *s = malloc(n * sizeof *s);
  uint8_t *t = malloc(n);
  mp_status st;
  if (!p || !l || !s || !t) {
    st = mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  } else {
    for (size_t i = 0; i < n; i++) {
      p[i] = m->pieces[i].piece;
      l[i] = m->pieces[i].len;
      s[i] = m->pieces[i].score;
      t[i] = (uint8_t)m->pieces[i].type;
    }
    mp_unigram_opts o;
    mp_unigram_opts_init(&o);
    o.flavor = flavor;
    o.what = what;
    if (flavor == MP_UNIGRAM_SPM) {
      o.byte_fallback = m->byte_fallback;
    } else {
      o.unk_id = m->unk_id;
      o.byte_fallback = hf_byte_fallback;
    }
    st = mp_unigram_create(n, (const char *const *)p, l, s, t, &o, out);
  }
  free(p), free(l), free(s), free(t);
  return st;
}

/* ---- tokenizer.json as transformers' converter writes it ------------------------------------ */

static void json_metaspace(mp_sb *sb) {
  mp_sb_puts(sb,
             "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"always\",\"split\":true}");
}

mp_status mp_spm_to_hf_json(const mp_spm_model *m, const mp_spm_hf_opts *o, mp_sb *sb) {
  if (m->model_type != 1)
    return mp_err(MP_ERR_UNSUPPORTED,
                  "spm.model: SentencePiece model_type %d is not Unigram (1); only Unigram models are supported",
                  m->model_type);
  mp_spm_hf_opts dflt = {0, 0, 1, NULL, 0, -1, -1};
  if (!o) o = &dflt;
  mp_sb_puts(sb, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
  int first = 1;
  for (size_t i = 0; o->added && i < o->n_added; i++) {
    const mp_spm_added *a = &o->added[i];
    if (i) mp_sb_putc(sb, ',');
    mp_sb_printf(sb, "{\"id\":%lld,\"content\":", (long long)a->id);
    mp_sb_json_str(sb, a->content, a->len);
    mp_sb_printf(sb, ",\"single_word\":%s,\"lstrip\":%s,\"rstrip\":%s,\"normalized\":%s,\"special\":%s}",
                 a->single_word ? "true" : "false", a->lstrip ? "true" : "false", a->rstrip ? "true" : "false",
                 a->normalized ? "true" : "false", a->special ? "true" : "false");
  }
  for (size_t i = 0; !o->added && i < m->n_pieces; i++) {
    int t = m->pieces[i].type;
    if (t != MP_SPM_CONTROL && t != MP_SPM_USER_DEFINED) continue;
    if (!first) mp_sb_putc(sb, ',');
    first = 0;
    mp_sb_printf(sb, "{\"id\":%zu,\"content\":", i);
    mp_sb_json_str(sb, m->pieces[i].piece, m->pieces[i].len);
    mp_sb_printf(sb, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":%s}",
                 t == MP_SPM_CONTROL ? "true" : "false");
  }
  mp_sb_puts(sb, "],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[");
  const mp_spm_normalizer_spec *ns = &m->normalizer;
  if (o->deberta) {
    if (o->do_lower_case) mp_sb_puts(sb, "{\"type\":\"Lowercase\"},");
    mp_sb_puts(sb, "{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true},");
    if (ns->charsmap_len) {
      mp_sb_puts(sb, "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"");
      mp_base64_encode(sb, ns->charsmap, ns->charsmap_len);
      mp_sb_puts(sb, "\"},");
    }
    mp_sb_puts(sb, "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"}]},");
    mp_sb_puts(sb, "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[");
    if (o->split_by_punct) mp_sb_puts(sb, "{\"type\":\"Punctuation\",\"behavior\":\"Isolated\"},");
    json_metaspace(sb);
    mp_sb_puts(sb, "]},");
    int64_t cls = -1, sep = -1;
    for (size_t i = 0; i < m->n_pieces; i++) {
      if (m->pieces[i].len == 5 && memcmp(m->pieces[i].piece, "[CLS]", 5) == 0) cls = (int64_t)i;
      if (m->pieces[i].len == 5 && memcmp(m->pieces[i].piece, "[SEP]", 5) == 0) sep = (int64_t)i;
    }
    /* the slow tokenizer's PieceToId falls back to the unk id */
    if (cls < 0) cls = m->unk_id;
    if (sep < 0) sep = m->unk_id;
    if (o->cls_id >= 0) cls = o->cls_id;
    if (o->sep_id >= 0) sep = o->sep_id;
    mp_sb_printf(
        sb,
        "\"post_processor\":{\"type\":\"TemplateProcessing\","
        "\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
        "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}],"
        "\"pair\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
        "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}},"
        "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":1}}],"
        "\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[%lld],\"tokens\":[\"[CLS]\"]},"
        "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[%lld],\"tokens\":[\"[SEP]\"]}}},",
        (long long)cls, (long long)sep);
  } else {
    if (ns->charsmap_len) {
      mp_sb_puts(sb, "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"");
      mp_base64_encode(sb, ns->charsmap, ns->charsmap_len);
      mp_sb_puts(sb, "\"},");
    }
    mp_sb_puts(sb, "{\"type\":\"Strip\",\"strip_left\":false,\"strip_right\":true},");
    mp_sb_puts(sb, "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\"\xE2\x96\x81\"}]},");
    mp_sb_puts(sb, "\"pre_tokenizer\":");
    json_metaspace(sb);
    mp_sb_puts(sb, ",\"post_processor\":null,");
  }
  mp_sb_puts(sb, "\"decoder\":");
  json_metaspace(sb);
  mp_sb_printf(sb, ",\"model\":{\"type\":\"Unigram\",\"unk_id\":%lld,\"vocab\":[", (long long)m->unk_id);
  for (size_t i = 0; i < m->n_pieces; i++) {
    if (i) mp_sb_putc(sb, ',');
    mp_sb_putc(sb, '[');
    mp_sb_json_str(sb, m->pieces[i].piece, m->pieces[i].len);
    mp_sb_putc(sb, ',');
    mp_sb_json_f64(sb, (double)m->pieces[i].score);
    mp_sb_putc(sb, ']');
  }
  mp_sb_puts(sb, "],\"byte_fallback\":false}}");
  if (sb->oom) return mp_err(MP_ERR_NOMEM, "spm.model: out of memory writing the converted tokenizer.json");
  return MP_OK;
}

/* ---- SentencePiece's own encoder ------------------------------------------------------------ */

struct mp_spm_processor {
  const mp_spm_model *m;
  mp_precompiled *charsmap; /* NULL = identity */
  mp_unigram *model;
  size_t n_user; /* user-defined symbols (matched first by the normalizer) */
  const mp_spm_piece **user;
};

mp_status mp_spm_processor_create(const mp_spm_model *m, const char *what, mp_spm_processor **out) {
  *out = NULL;
  if (!what) what = "spm.model";
  mp_spm_processor *p = calloc(1, sizeof *p);
  if (!p) return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  p->m = m;
  mp_status st = MP_OK;
  if (m->normalizer.charsmap_len) {
    char w[512];
    snprintf(w, sizeof w, "%s: normalizer_spec.precompiled_charsmap", what);
    st = mp_precompiled_load(m->normalizer.charsmap, m->normalizer.charsmap_len, w, &p->charsmap);
  }
  if (st == MP_OK) st = mp_spm_unigram(m, MP_UNIGRAM_SPM, 0, what, &p->model);
  if (st == MP_OK) {
    p->user = malloc((m->n_pieces ? m->n_pieces : 1) * sizeof *p->user);
    if (!p->user)
      st = mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
    else
      for (size_t i = 0; i < m->n_pieces; i++)
        if (m->pieces[i].type == MP_SPM_USER_DEFINED) p->user[p->n_user++] = &m->pieces[i];
  }
  if (st != MP_OK) {
    mp_spm_processor_free(p);
    return st;
  }
  *out = p;
  return MP_OK;
}

void mp_spm_processor_free(mp_spm_processor *p) {
  if (!p) return;
  mp_precompiled_free(p->charsmap);
  mp_unigram_free(p->model);
  free(p->user);
  free(p);
}

const mp_unigram *mp_spm_processor_model(const mp_spm_processor *p) { return p->model; }

/* Normalizer::NormalizePrefix: (replacement, consumed). */
static int normalize_prefix(const mp_spm_processor *p, const char *in, size_t n, const char **rep, size_t *rep_len,
                            size_t *consumed) {
  size_t best = 0;
  for (size_t k = 0; k < p->n_user; k++) {
    const mp_spm_piece *u = p->user[k];
    if (u->len <= n && u->len > best && memcmp(in, u->piece, u->len) == 0) best = u->len;
  }
  if (best) {
    *rep = in, *rep_len = best, *consumed = best;
    return 0;
  }
  if (p->charsmap) {
    int r = mp_precompiled_prefix(p->charsmap, in, n, consumed, rep, rep_len);
    if (r < 0) return -1;
    if (r > 0) return 0;
  }
  size_t l = mp_utf8_seq_len(in, n); /* SentencePiece DecodeUTF8 validity is RFC 3629 too */
  if (l == 0) {
    *rep = "\xEF\xBF\xBD", *rep_len = 3, *consumed = 1;
  } else {
    *rep = in, *rep_len = l, *consumed = l;
  }
  return 0;
}

mp_status mp_spm_normalize(const mp_spm_processor *p, const char *in, size_t n, mp_sb *out) {
  const mp_spm_normalizer_spec *ns = &p->m->normalizer;
  static const char ws[] = "\xE2\x96\x81";
  const char *rep;
  size_t rl, used;
  if (ns->remove_extra_whitespaces) {
    while (n > 0) {
      if (normalize_prefix(p, in, n, &rep, &rl, &used) < 0) return MP_ERR_FORMAT;
      if (!(rl == 1 && rep[0] == ' ')) break;
      in += used, n -= used;
    }
  }
  if (n == 0) return MP_OK;
  size_t start_len = out->len;
  int suffix = p->m->treat_whitespace_as_suffix;
  if (!suffix && ns->add_dummy_prefix)
    mp_sb_append(out, ns->escape_whitespaces ? ws : " ", ns->escape_whitespaces ? 3 : 1);
  int prev_space = ns->remove_extra_whitespaces;
  while (n > 0) {
    if (normalize_prefix(p, in, n, &rep, &rl, &used) < 0) return MP_ERR_FORMAT;
    while (prev_space && rl > 0 && rep[0] == ' ')
      rep++, rl--;
    if (rl > 0) {
      for (size_t k = 0; k < rl; k++) {
        if (ns->escape_whitespaces && rep[k] == ' ')
          mp_sb_append(out, ws, 3);
        else
          mp_sb_putc(out, rep[k]);
      }
      prev_space = rep[rl - 1] == ' ';
    }
    in += used, n -= used;
    if (!ns->remove_extra_whitespaces) prev_space = 0;
  }
  if (ns->remove_extra_whitespaces) {
    const char *sp = ns->escape_whitespaces ? ws : " ";
    size_t sl = ns->escape_whitespaces ? 3 : 1;
    while (out->len - start_len >= sl && memcmp(out->buf + out->len - sl, sp, sl) == 0)
      out->len -= sl;
    if (out->buf) out->buf[out->len] = 0;
  }
  if (suffix && ns->add_dummy_prefix)
    mp_sb_append(out, ns->escape_whitespaces ? ws : " ", ns->escape_whitespaces ? 3 : 1);
  if (out->oom) return mp_err(MP_ERR_NOMEM, "SentencePiece normalizer: out of memory");
  return MP_OK;
}

mp_status mp_spm_encode(const mp_spm_processor *p, mp_unigram_scratch *scratch, const char *in, size_t n,
                        mp_sb *normalized, mp_unigram_tokens *out) {
  mp_sb local;
  mp_sb *nb = normalized;
  if (!nb) {
    mp_sb_init(&local);
    nb = &local;
  }
  mp_sb_clear(nb);
  mp_status st = mp_spm_normalize(p, in, n, nb);
  if (st == MP_OK) st = mp_unigram_encode(p->model, scratch, nb->buf ? nb->buf : "", nb->len, out);
  if (!normalized) mp_sb_free(&local);
  return st;
}

/* ---- model folder -> tokenizer.json (transformers' AutoTokenizer) --------------------------- */

typedef struct added_set {
  mp_spm_added *v;
  size_t n, cap;
  const mp_spm_model *m;
} added_set;

/* Last piece with this string (HF Unigram token_to_id), or -1. */
static int64_t piece_id(const mp_spm_model *m, const char *s, size_t n) {
  for (size_t i = m->n_pieces; i-- > 0;)
    if (m->pieces[i].len == n && memcmp(m->pieces[i].piece, s, n) == 0) return (int64_t)i;
  return -1;
}

static int64_t added_id(const added_set *a, const char *s, size_t n) {
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i].len == n && memcmp(a->v[i].content, s, n) == 0) return a->v[i].id;
  return -1;
}

/* HF AddedVocabulary::add_tokens for one token. */
static mp_status added_add(added_set *a, mp_spm_added t) {
  if (t.len == 0) return MP_OK;
  for (size_t i = 0; i < a->n; i++) {
    mp_spm_added *e = &a->v[i];
    if (e->len == t.len && memcmp(e->content, t.content, t.len) == 0) {
      /* same content: the flags are replaced, the id kept */
      t.id = e->id;
      *e = t;
      return MP_OK;
    }
  }
  int64_t id = piece_id(a->m, t.content, t.len);
  if (id < 0) {
    int64_t vs = (int64_t)a->m->n_pieces, mx = -1;
    for (size_t i = 0; i < a->n; i++)
      if (a->v[i].id > mx) mx = a->v[i].id;
    id = mx < 0 ? vs : (mx >= vs || vs == 0) ? mx + 1 : vs;
  }
  t.id = id;
  if (a->n == a->cap) {
    size_t nc = a->cap ? a->cap * 2 : 16;
    mp_spm_added *v = realloc(a->v, nc * sizeof *v);
    if (!v) return mp_err(MP_ERR_NOMEM, "out of memory");
    a->v = v;
    a->cap = nc;
  }
  a->v[a->n++] = t;
  return MP_OK;
}

static int jbool(const mp_json *o, const char *k, int dflt) {
  const mp_json *v = mp_json_get(o, k);
  return v && v->type == MP_JSON_BOOL ? v->boolean : dflt;
}

/* A special-token value of a config file: "text" or {"content": ..., flags}. `dict_special` is the
 * special flag transformers gives dicts from that file (AddedToken(**value, special=True) for
 * special_tokens_map.json). Returns 0 when the value is unusable. */
static int token_value(const mp_json *v, int dict_special, int *is_str, mp_spm_added *t) {
  memset(t, 0, sizeof *t);
  t->id = -1;
  if (!v) return 0;
  if (v->type == MP_JSON_STRING) {
    *is_str = 1;
    t->content = v->str, t->len = v->len;
    return 1;
  }
  if (v->type != MP_JSON_OBJECT) return 0;
  const mp_json *c = mp_json_get(v, "content");
  if (!c || c->type != MP_JSON_STRING) return 0;
  *is_str = 0;
  t->content = c->str, t->len = c->len;
  t->special = jbool(v, "special", dict_special);
  if (dict_special) t->special = 1;
  t->single_word = jbool(v, "single_word", 0);
  t->lstrip = jbool(v, "lstrip", 0);
  t->rstrip = jbool(v, "rstrip", 0);
  t->normalized = jbool(v, "normalized", !t->special);
  return 1;
}

static int cmp_added(const void *a, const void *b) {
  int64_t x = ((const mp_spm_added *)a)->id, y = ((const mp_spm_added *)b)->id;
  return x < y ? -1 : x > y;
}

typedef struct special_tok {
  int set, is_str;
  mp_spm_added t;
} special_tok;

mp_status mp_spm_folder_to_hf_json(const char *spm_path, const char *dir, mp_sb *out) {
  static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                     "pad_token", "cls_token", "mask_token"};
  static const char *const dflts[] = {"[CLS]", "[SEP]", "[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};
  enum { NK = 7 };
  mp_spm_model *m = NULL;
  mp_arena ar;
  mp_arena_init(&ar, 0);
  added_set A = {0};
  const mp_json *cfg = NULL, *smap = NULL, *atok = NULL;
  mp_status st = mp_spm_model_load(spm_path, &m);
  char *p_cfg = mp_path_join(dir, "tokenizer_config.json"), *p_map = mp_path_join(dir, "special_tokens_map.json"),
       *p_add = mp_path_join(dir, "added_tokens.json");
  if (st == MP_OK && (!p_cfg || !p_map || !p_add)) st = mp_err(MP_ERR_NOMEM, "out of memory");
  mp_json *j;
  if (st == MP_OK && mp_is_file(p_cfg) && (st = mp_json_parse_file(p_cfg, &ar, &j)) == MP_OK) cfg = j;
  if (st == MP_OK && mp_is_file(p_map) && (st = mp_json_parse_file(p_map, &ar, &j)) == MP_OK) smap = j;
  if (st == MP_OK && mp_is_file(p_add) && (st = mp_json_parse_file(p_add, &ar, &j)) == MP_OK) atok = j;
  if (st != MP_OK) goto done;
  if (cfg && cfg->type != MP_JSON_OBJECT) cfg = NULL;
  if (smap && smap->type != MP_JSON_OBJECT) smap = NULL;
  if (atok && atok->type != MP_JSON_OBJECT) atok = NULL;
  const char *cls_name = cfg ? mp_json_get_str(cfg, "tokenizer_class", "DebertaV2Tokenizer") : "DebertaV2Tokenizer";
  if (strcmp(cls_name, "DebertaV2Tokenizer") && strcmp(cls_name, "DebertaV2TokenizerFast")) {
    st = mp_err(MP_ERR_UNSUPPORTED,
                "%s: tokenizer_class \"%s\" with an spm.model is not supported (only DebertaV2Tokenizer); "
                "save the tokenizer with transformers to get a tokenizer.json",
                p_cfg, cls_name);
    goto done;
  }
  A.m = m;
  /* 1. the converter: CONTROL (special) and USER_DEFINED pieces, normalized false */
  for (size_t i = 0; i < m->n_pieces && st == MP_OK; i++) {
    int t = m->pieces[i].type;
    if (t != MP_SPM_CONTROL && t != MP_SPM_USER_DEFINED) continue;
    mp_spm_added a = {m->pieces[i].piece, m->pieces[i].len, -1, 0, 0, 0, 0, t == MP_SPM_CONTROL};
    st = added_add(&A, a);
  }
  /* 2. special tokens: class defaults < tokenizer_config.json < special_tokens_map.json (the
   *    latter only when the config has no added_tokens_decoder, as transformers' legacy path) */
  enum { MAXSP = NK + 64 };
  special_tok sp[MAXSP];
  int nsp = NK;
  const mp_json *decoder = cfg ? mp_json_get(cfg, "added_tokens_decoder") : NULL;
  if (decoder && decoder->type != MP_JSON_OBJECT) decoder = NULL;
  for (int k = 0; k < NK; k++) {
    sp[k].set = 1, sp[k].is_str = 1;
    memset(&sp[k].t, 0, sizeof sp[k].t);
    sp[k].t.content = dflts[k], sp[k].t.len = strlen(dflts[k]);
    const mp_json *v = cfg ? mp_json_get(cfg, keys[k]) : NULL;
    if (v && v->type == MP_JSON_NULL)
      sp[k].set = 0;
    else if (v)
      token_value(v, 0, &sp[k].is_str, &sp[k].t);
    if (!decoder && smap) {
      v = mp_json_get(smap, keys[k]);
      if (v && v->type != MP_JSON_NULL) {
        special_tok s2;
        if (token_value(v, 1, &s2.is_str, &s2.t)) sp[k].set = 1, sp[k].is_str = s2.is_str, sp[k].t = s2.t;
      }
    }
  }
  /* additional_special_tokens (after the seven, as transformers' special_tokens_map order) */
  {
    /* the config's list, then (legacy path) the map's entries not already in it */
    for (int src = 0; src < 2; src++) {
      const mp_json *extra = src == 0 ? (cfg ? mp_json_get(cfg, "additional_special_tokens") : NULL)
                                      : (!decoder && smap ? mp_json_get(smap, "additional_special_tokens") : NULL);
      if (!extra || extra->type != MP_JSON_ARRAY) continue;
      for (size_t i = 0; i < extra->len && nsp < MAXSP; i++) {
        special_tok *t = &sp[nsp];
        t->set = 1;
        if (!token_value(extra->items[i], src == 1, &t->is_str, &t->t)) continue;
        int present = 0;
        for (int q = NK; q < nsp && src == 1; q++) {
          const special_tok *o = &sp[q];
          if (o->is_str != t->is_str || o->t.len != t->t.len || memcmp(o->t.content, t->t.content, t->t.len)) continue;
          if (t->is_str ||
              (o->t.single_word == t->t.single_word && o->t.lstrip == t->t.lstrip && o->t.rstrip == t->t.rstrip &&
               o->t.normalized == t->t.normalized && o->t.special == t->t.special))
            present = 1;
        }
        if (!present) nsp++;
      }
    }
  }
  /* DebertaV2Tokenizer.__init__ turns a plain unk_token into AddedToken(normalized=True,
   * special=True), and the fast tokenizer inherits the slow one's init kwargs */
  if (sp[2].set && sp[2].is_str) sp[2].is_str = 0, sp[2].t.normalized = 1, sp[2].t.special = 1;
  /* 3. added_tokens_decoder (or the legacy added_tokens.json), sorted by id */
  added_set D = {0};
  D.m = m;
  if (decoder) {
    for (size_t i = 0; i < decoder->len; i++) {
      const mp_json *v = decoder->items[i];
      mp_spm_added t;
      int is_str;
      if (!token_value(v, 0, &is_str, &t) || is_str) continue;
      t.id = strtoll(decoder->keys[i], NULL, 10);
      if (D.n == D.cap) {
        size_t nc = D.cap ? D.cap * 2 : 16;
        mp_spm_added *nv = realloc(D.v, nc * sizeof *nv);
        if (!nv) {
          st = mp_err(MP_ERR_NOMEM, "out of memory");
          break;
        }
        D.v = nv, D.cap = nc;
      }
      D.v[D.n++] = t;
    }
  } else if (atok) {
    for (size_t i = 0; i < atok->len; i++) {
      const mp_json *v = atok->items[i];
      if (v->type != MP_JSON_NUMBER || !v->is_int) continue;
      mp_spm_added t = {atok->keys[i], atok->key_lens[i], v->i, 0, 0, 0, 0, 0};
      for (int k = 0; k < nsp; k++)
        if (sp[k].set && sp[k].t.len == t.len && memcmp(sp[k].t.content, t.content, t.len) == 0) t.special = 1;
      t.normalized = !t.special;
      if (D.n == D.cap) {
        size_t nc = D.cap ? D.cap * 2 : 16;
        mp_spm_added *nv = realloc(D.v, nc * sizeof *nv);
        if (!nv) {
          st = mp_err(MP_ERR_NOMEM, "out of memory");
          break;
        }
        D.v = nv, D.cap = nc;
      }
      D.v[D.n++] = t;
    }
    /* (transformers 4.46 means to swap these AddedTokens in for the special tokens of the same
     * text, but files the map under a stale key, so the special tokens stay as they are) */
  }
  if (D.n) qsort(D.v, D.n, sizeof *D.v, cmp_added);
  /* tokens_to_add: decoder entries not already present with identical flags */
  size_t base_n = A.n;
  for (size_t i = 0; i < D.n && st == MP_OK; i++) {
    int same = 0;
    for (size_t q = 0; q < base_n; q++) {
      const mp_spm_added *e = &A.v[q];
      if (e->len == D.v[i].len && !memcmp(e->content, D.v[i].content, e->len) && e->single_word == D.v[i].single_word &&
          e->lstrip == D.v[i].lstrip && e->rstrip == D.v[i].rstrip && e->normalized == D.v[i].normalized &&
          e->special == D.v[i].special)
        same = 1;
    }
    if (!same) {
      mp_spm_added t = D.v[i];
      for (int k = 0; k < nsp; k++)
        if (sp[k].set && sp[k].t.len == t.len && !memcmp(sp[k].t.content, t.content, t.len)) t.special = 1;
      st = added_add(&A, t);
    }
  }
  /* special tokens not yet added (a plain string counts as present when its text is) */
  for (int k = 0; k < nsp && st == MP_OK; k++) {
    if (!sp[k].set) continue;
    int dup = 0;
    for (int q = 0; q < k; q++)
      if (sp[q].set && sp[q].t.len == sp[k].t.len && !memcmp(sp[q].t.content, sp[k].t.content, sp[k].t.len)) dup = 1;
    if (dup) continue;
    if (sp[k].is_str && added_id(&A, sp[k].t.content, sp[k].t.len) >= 0) continue;
    if (!sp[k].is_str) {
      /* an AddedToken equal (text and every flag) to one of step 3 is not added again */
      int same = 0;
      for (size_t i = 0; i < D.n; i++) {
        const mp_spm_added *e = &D.v[i], *t = &sp[k].t;
        if (e->len == t->len && !memcmp(e->content, t->content, t->len) && e->single_word == t->single_word &&
            e->lstrip == t->lstrip && e->rstrip == t->rstrip && e->normalized == t->normalized &&
            e->special == t->special)
          same = 1;
      }
      if (same) continue;
    }
    mp_spm_added t = sp[k].t;
    if (sp[k].is_str) t.normalized = 0;
    t.special = 1;
    st = added_add(&A, t);
  }
  if (st != MP_OK) {
    free(D.v);
    goto done;
  }
  qsort(A.v, A.n, sizeof *A.v, cmp_added);
  mp_spm_hf_opts o = {0, 0, 1, A.v, A.n, -1, -1};
  if (cfg) {
    o.do_lower_case = jbool(cfg, "do_lower_case", 0);
    o.split_by_punct = jbool(cfg, "split_by_punct", 0);
  }
  /* the template's ids: the slow tokenizer's convert_tokens_to_ids("[CLS]" / "[SEP]") */
  o.cls_id = added_id(&A, "[CLS]", 5);
  if (o.cls_id < 0) o.cls_id = piece_id(m, "[CLS]", 5);
  o.sep_id = added_id(&A, "[SEP]", 5);
  if (o.sep_id < 0) o.sep_id = piece_id(m, "[SEP]", 5);
  st = mp_spm_to_hf_json(m, &o, out);
  if (st != MP_OK) mp_err_prefix(st, "%s", spm_path);
  free(D.v);
done:
  free(A.v);
  free(p_cfg), free(p_map), free(p_add);
  mp_arena_free(&ar);
  mp_spm_model_free(m);
  return st;
}
