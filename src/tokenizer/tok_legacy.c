/* Legacy tokenizer files -> the tokenizer.json transformers' slow->fast converters build:
 *   vocab.txt (+ tokenizer_config.json)            BertConverter / MPNetConverter
 *   vocab.json + merges.txt (+ tokenizer_config)   RobertaConverter (RoBERTa, BART)
 *   spm.model                                      DebertaV2Converter (via tok_glue.c)
 * Building JSON text and loading it through the one tokenizer.json path keeps a single
 * implementation of every component. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "tokenizer/tok_decode.h"
#include "tokenizer/tok_internal.h"

#include "tokenizer/precompiled.h"
#include "tokenizer/spm_model.h"

typedef struct special_def {
  const char *key;  /* tokenizer_config key */
  const char *dflt; /* default content */
  int lstrip;       /* default lstrip (RoBERTa <mask>) */
} special_def;

typedef struct added_entry {
  char *content;
  int32_t id;
  int lstrip, rstrip, single_word, normalized;
} added_entry;

static const char *cfg_str(const mp_json *cfg, const char *key, const char *dflt) {
  const mp_json *v = cfg ? mp_json_get(cfg, key) : NULL;
  if (!v) return dflt;
  if (v->type == MP_JSON_STRING) return v->str;
  if (v->type == MP_JSON_OBJECT) return mp_json_get_str(v, "content", dflt);
  return dflt;
}

static int cfg_bool3(const mp_json *cfg, const char *key, int dflt) {
  const mp_json *v = cfg ? mp_json_get(cfg, key) : NULL;
  if (!v) return dflt;
  if (v->type == MP_JSON_NULL) return -1;
  if (v->type == MP_JSON_BOOL) return v->boolean;
  return dflt;
}

/* Special tokens as transformers' fast tokenizer registers them (content, flags, id). */
static mp_status collect_specials(const mp_json *cfg, const mp_json *stm, const special_def *defs, size_t ndefs,
                                  const mp_strmap *vocab, added_entry *out, size_t *n_out, const char *dir) {
  *n_out = 0;
  for (size_t i = 0; i < ndefs; i++) {
    const mp_json *v = stm ? mp_json_get(stm, defs[i].key) : NULL;
    if (!v && cfg) v = mp_json_get(cfg, defs[i].key);
    const char *content = defs[i].dflt;
    int lstrip = defs[i].lstrip, rstrip = 0, sw = 0, normalized = 0;
    if (v && v->type == MP_JSON_STRING)
      content = v->str;
    else if (v && v->type == MP_JSON_OBJECT) {
      content = mp_json_get_str(v, "content", content);
      lstrip = mp_json_get_bool(v, "lstrip", lstrip);
      rstrip = mp_json_get_bool(v, "rstrip", 0);
      sw = mp_json_get_bool(v, "single_word", 0);
      normalized = mp_json_get_bool(v, "normalized", 0);
    } else if (v && v->type == MP_JSON_NULL)
      content = NULL;
    if (!content || !*content) continue;
    int32_t id = mp_strmap_get(vocab, content, strlen(content));
    int dup = 0;
    for (size_t k = 0; k < *n_out; k++)
      if (!strcmp(out[k].content, content)) dup = 1;
    if (dup) continue;
    if (id < 0) {
      /* added_tokens.json may give it an id */
      char *p = mp_path_join(dir, "added_tokens.json");
      mp_arena ar;
      mp_arena_init(&ar, 4096);
      mp_json *at = NULL;
      if (p && mp_is_file(p) && mp_json_parse_file(p, &ar, &at) == MP_OK) {
        const mp_json *x = mp_json_get(at, content);
        if (x && x->type == MP_JSON_NUMBER && x->is_int && x->i >= 0 && x->i < (1 << 26)) id = (int32_t)x->i;
      }
      mp_err_clear();
      mp_arena_free(&ar);
      free(p);
    }
    out[*n_out] = (added_entry){strdup(content), id, lstrip, rstrip, sw, normalized};
    if (!out[*n_out].content) return mp_err(MP_ERR_NOMEM, "out of memory");
    (*n_out)++;
  }
  return MP_OK;
}

static void write_added(mp_sb *js, added_entry *a, size_t n, int32_t next_id) {
  /* ids for tokens missing from the vocab: appended after it, in order */
  for (size_t i = 0; i < n; i++)
    if (a[i].id < 0) a[i].id = next_id++;
  /* sorted by id, like transformers' added_tokens_decoder */
  for (size_t i = 1; i < n; i++)
    for (size_t k = i; k > 0 && a[k].id < a[k - 1].id; k--) {
      added_entry t = a[k];
      a[k] = a[k - 1];
      a[k - 1] = t;
    }
  mp_sb_puts(js, "\"added_tokens\":[");
  for (size_t i = 0; i < n; i++) {
    if (i) mp_sb_putc(js, ',');
    mp_sb_printf(js, "{\"id\":%d,\"content\":", (int)a[i].id);
    mp_sb_json_str(js, a[i].content, strlen(a[i].content));
    mp_sb_printf(js, ",\"single_word\":%s,\"lstrip\":%s,\"rstrip\":%s,\"normalized\":%s,\"special\":true}",
                 a[i].single_word ? "true" : "false", a[i].lstrip ? "true" : "false", a[i].rstrip ? "true" : "false",
                 a[i].normalized ? "true" : "false");
  }
  mp_sb_puts(js, "],");
}

static void free_added(added_entry *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(a[i].content);
}

static mp_status load_cfg(const char *dir, const char *name, mp_arena *ar, mp_json **out) {
  *out = NULL;
  char *p = mp_path_join(dir, name);
  if (!p) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status st = MP_OK;
  if (mp_is_file(p)) st = mp_json_parse_file(p, ar, out);
  free(p);
  if (st == MP_OK && *out && (*out)->type != MP_JSON_OBJECT) *out = NULL;
  return st;
}

static void template_json(mp_sb *js, const char *cls, int32_t cls_id, const char *sep, int32_t sep_id, int double_sep) {
  mp_sb_puts(js, "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":");
  mp_sb_json_str(js, cls, strlen(cls));
  mp_sb_puts(js, ",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":");
  mp_sb_json_str(js, sep, strlen(sep));
  mp_sb_puts(js, ",\"type_id\":0}}],\"pair\":[{\"SpecialToken\":{\"id\":");
  mp_sb_json_str(js, cls, strlen(cls));
  mp_sb_puts(js, ",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":");
  mp_sb_json_str(js, sep, strlen(sep));
  mp_sb_puts(js, ",\"type_id\":0}},");
  if (double_sep) {
    mp_sb_puts(js, "{\"SpecialToken\":{\"id\":");
    mp_sb_json_str(js, sep, strlen(sep));
    mp_sb_puts(js, ",\"type_id\":0}},");
  }
  mp_sb_puts(js, "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}},{\"SpecialToken\":{\"id\":");
  mp_sb_json_str(js, sep, strlen(sep));
  mp_sb_puts(js, ",\"type_id\":1}}],\"special_tokens\":{");
  mp_sb_json_str(js, cls, strlen(cls));
  mp_sb_puts(js, ":{\"id\":");
  mp_sb_json_str(js, cls, strlen(cls));
  mp_sb_printf(js, ",\"ids\":[%d],\"tokens\":[", (int)cls_id);
  mp_sb_json_str(js, cls, strlen(cls));
  mp_sb_puts(js, "]}");
  if (strcmp(cls, sep) != 0) {
    mp_sb_putc(js, ',');
    mp_sb_json_str(js, sep, strlen(sep));
    mp_sb_puts(js, ":{\"id\":");
    mp_sb_json_str(js, sep, strlen(sep));
    mp_sb_printf(js, ",\"ids\":[%d],\"tokens\":[", (int)sep_id);
    mp_sb_json_str(js, sep, strlen(sep));
    mp_sb_puts(js, "]}");
  }
  mp_sb_puts(js, "}},");
}

static int32_t entry_id(const added_entry *a, size_t n, const char *content) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(a[i].content, content)) return a[i].id;
  return -1;
}

/* vocab.txt: one token per line, id = line number (a later duplicate wins, as in transformers). */
static mp_status legacy_wordpiece(const char *dir, const char *vpath, mp_sb *js) {
  char *buf = NULL;
  size_t len = 0;
  MP_TRY(mp_read_file(vpath, &buf, &len, (size_t)1 << 30));
  mp_arena ar;
  mp_arena_init(&ar, 1 << 16);
  mp_json *cfg = NULL, *stm = NULL;
  mp_status st = load_cfg(dir, "tokenizer_config.json", &ar, &cfg);
  if (st == MP_OK) st = load_cfg(dir, "special_tokens_map.json", &ar, &stm);
  mp_strmap vocab;
  mp_strmap_init(&vocab);
  size_t nlines = 0;
  /* pass 1: last index of each token */
  for (size_t i = 0; st == MP_OK && i < len;) {
    size_t e = i;
    while (e < len && buf[e] != '\n')
      e++;
    if (!(e == len && i == len)) {
      st = mp_strmap_put(&vocab, buf + i, e - i, (int32_t)nlines);
      nlines++;
    }
    i = e + 1;
  }
  if (st == MP_OK && !mp_utf8_valid(buf, len)) st = mp_err(MP_ERR_FORMAT, "%s: not valid UTF-8", vpath);
  if (st == MP_OK && nlines == 0) st = mp_err(MP_ERR_FORMAT, "%s: empty vocabulary", vpath);
  const char *cls_name = mp_json_get_str(cfg, "tokenizer_class", "BertTokenizer");
  int mpnet = strstr(cls_name, "MPNet") != NULL;
  special_def bert_defs[] = {{"pad_token", "[PAD]", 0},
                             {"unk_token", "[UNK]", 0},
                             {"cls_token", "[CLS]", 0},
                             {"sep_token", "[SEP]", 0},
                             {"mask_token", "[MASK]", 0}};
  special_def mpnet_defs[] = {{"bos_token", "<s>", 0},    {"pad_token", "<pad>", 0}, {"eos_token", "</s>", 0},
                              {"unk_token", "[UNK]", 0},  {"cls_token", "<s>", 0},   {"sep_token", "</s>", 0},
                              {"mask_token", "<mask>", 1}};
  added_entry added[8];
  size_t nadded = 0;
  if (st == MP_OK)
    st = collect_specials(cfg, stm, mpnet ? mpnet_defs : bert_defs, mpnet ? 7 : 5, &vocab, added, &nadded, dir);
  if (st == MP_OK) {
    int lower = cfg_bool3(cfg, "do_lower_case", 1);
    int strip = cfg_bool3(cfg, "strip_accents", -1);
    int chinese = cfg_bool3(cfg, "tokenize_chinese_chars", 1);
    const char *unk = cfg_str(stm, "unk_token", cfg_str(cfg, "unk_token", mpnet ? "[UNK]" : "[UNK]"));
    const char *cls = cfg_str(stm, "cls_token", cfg_str(cfg, "cls_token", mpnet ? "<s>" : "[CLS]"));
    const char *sep = cfg_str(stm, "sep_token", cfg_str(cfg, "sep_token", mpnet ? "</s>" : "[SEP]"));
    mp_sb_puts(js, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,");
    write_added(js, added, nadded, (int32_t)nlines);
    mp_sb_printf(js,
                 "\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":%s,\"strip_"
                 "accents\":%s,\"lowercase\":%s},",
                 chinese == 0 ? "false" : "true",
                 strip < 0 ? "null"
                 : strip   ? "true"
                           : "false",
                 lower == 0 ? "false" : "true");
    mp_sb_puts(js, "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},");
    int32_t cls_id = entry_id(added, nadded, cls), sep_id = entry_id(added, nadded, sep);
    if (cls_id < 0) cls_id = mp_strmap_get(&vocab, cls, strlen(cls));
    if (sep_id < 0) sep_id = mp_strmap_get(&vocab, sep, strlen(sep));
    template_json(js, cls, cls_id, sep, sep_id, mpnet);
    mp_sb_puts(js, "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},");
    mp_sb_puts(js, "\"model\":{\"type\":\"WordPiece\",\"unk_token\":");
    mp_sb_json_str(js, unk, strlen(unk));
    mp_sb_puts(js, ",\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,\"vocab\":{");
    size_t idx = 0;
    int firstw = 1;
    for (size_t i = 0; i < len;) {
      size_t e = i;
      while (e < len && buf[e] != '\n')
        e++;
      if (!(e == len && i == len)) {
        if (mp_strmap_get(&vocab, buf + i, e - i) == (int32_t)idx) {
          if (!firstw) mp_sb_putc(js, ',');
          firstw = 0;
          mp_sb_json_str(js, buf + i, e - i);
          mp_sb_printf(js, ":%zu", idx);
        }
        idx++;
      }
      i = e + 1;
    }
    mp_sb_puts(js, "}}}");
  }
  free_added(added, nadded);
  mp_strmap_free(&vocab);
  mp_arena_free(&ar);
  free(buf);
  if (st == MP_OK && js->oom) st = mp_err(MP_ERR_NOMEM, "out of memory");
  return st;
}

/* vocab.json + merges.txt: byte-level BPE with RoBERTa processing. */
static mp_status legacy_bpe(const char *dir, const char *vpath, const char *mpath, mp_sb *js) {
  mp_arena ar;
  mp_arena_init(&ar, 1 << 20);
  mp_json *vocab = NULL, *cfg = NULL, *stm = NULL;
  char *mbuf = NULL;
  size_t mlen = 0;
  mp_status st = mp_json_parse_file(vpath, &ar, &vocab);
  if (st == MP_OK && vocab->type != MP_JSON_OBJECT)
    st = mp_err(MP_ERR_FORMAT, "%s: must be a JSON object {token: id}", vpath);
  if (st == MP_OK) st = mp_read_file(mpath, &mbuf, &mlen, (size_t)1 << 30);
  if (st == MP_OK && !mp_utf8_valid(mbuf, mlen)) st = mp_err(MP_ERR_FORMAT, "%s: not valid UTF-8", mpath);
  if (st == MP_OK) st = load_cfg(dir, "tokenizer_config.json", &ar, &cfg);
  if (st == MP_OK) st = load_cfg(dir, "special_tokens_map.json", &ar, &stm);
  mp_strmap vm;
  mp_strmap_init(&vm);
  int32_t max_id = -1;
  for (size_t i = 0; st == MP_OK && i < vocab->len; i++) {
    const mp_json *x = vocab->items[i];
    if (x->type != MP_JSON_NUMBER || !x->is_int || x->i < 0 || x->i >= (1 << 26)) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: ids must be integers", vpath, x->line, x->col);
      break;
    }
    st = mp_strmap_put(&vm, vocab->keys[i], vocab->key_lens[i], (int32_t)x->i);
    if ((int32_t)x->i > max_id) max_id = (int32_t)x->i;
  }
  special_def defs[] = {{"bos_token", "<s>", 0},    {"pad_token", "<pad>", 0}, {"eos_token", "</s>", 0},
                        {"unk_token", "<unk>", 0},  {"cls_token", "<s>", 0},   {"sep_token", "</s>", 0},
                        {"mask_token", "<mask>", 1}};
  added_entry added[8];
  size_t nadded = 0;
  if (st == MP_OK) st = collect_specials(cfg, stm, defs, 7, &vm, added, &nadded, dir);
  if (st == MP_OK) {
    int aps = cfg_bool3(cfg, "add_prefix_space", 0) == 1;
    const char *cls = cfg_str(stm, "cls_token", cfg_str(cfg, "cls_token", "<s>"));
    const char *sep = cfg_str(stm, "sep_token", cfg_str(cfg, "sep_token", "</s>"));
    int32_t cls_id = entry_id(added, nadded, cls), sep_id = entry_id(added, nadded, sep);
    mp_sb_puts(js, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,");
    write_added(js, added, nadded, max_id + 1);
    mp_sb_printf(js,
                 "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":%s,\"trim_"
                 "offsets\":true,\"use_regex\":true},",
                 aps ? "true" : "false");
    mp_sb_puts(js, "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[");
    mp_sb_json_str(js, sep, strlen(sep));
    mp_sb_printf(js, ",%d],\"cls\":[", (int)sep_id);
    mp_sb_json_str(js, cls, strlen(cls));
    mp_sb_printf(js, ",%d],\"trim_offsets\":true,\"add_prefix_space\":%s},", (int)cls_id, aps ? "true" : "false");
    mp_sb_puts(
        js, "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},");
    mp_sb_puts(js, "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":\"\","
                   "\"end_of_word_suffix\":\"\",\"fuse_unk\":false,\"byte_fallback\":false,\"vocab\":{");
    for (size_t i = 0; i < vocab->len; i++) {
      if (i) mp_sb_putc(js, ',');
      mp_sb_json_str(js, vocab->keys[i], vocab->key_lens[i]);
      mp_sb_printf(js, ":%lld", (long long)vocab->items[i]->i);
    }
    mp_sb_puts(js, "},\"merges\":[");
    /* transformers: lines 1 .. -1 of split("\n"), each split on whitespace into two tokens */
    size_t line = 0;
    int firstm = 1;
    for (size_t i = 0; i <= mlen;) {
      size_t e = i;
      while (e < mlen && mbuf[e] != '\n')
        e++;
      int last = e >= mlen;
      if (line > 0 && !last) {
        const char *s = mbuf + i;
        size_t n = e - i, a0 = 0;
        while (a0 < n && (s[a0] == ' ' || s[a0] == '\t' || s[a0] == '\r'))
          a0++;
        size_t a1 = a0;
        while (a1 < n && !(s[a1] == ' ' || s[a1] == '\t' || s[a1] == '\r'))
          a1++;
        size_t b0 = a1;
        while (b0 < n && (s[b0] == ' ' || s[b0] == '\t' || s[b0] == '\r'))
          b0++;
        size_t b1 = b0;
        while (b1 < n && !(s[b1] == ' ' || s[b1] == '\t' || s[b1] == '\r'))
          b1++;
        if (a1 > a0 && b1 > b0) {
          if (!firstm) mp_sb_putc(js, ',');
          firstm = 0;
          mp_sb_putc(js, '[');
          mp_sb_json_str(js, s + a0, a1 - a0);
          mp_sb_putc(js, ',');
          mp_sb_json_str(js, s + b0, b1 - b0);
          mp_sb_putc(js, ']');
        }
      }
      line++;
      if (last) break;
      i = e + 1;
    }
    mp_sb_puts(js, "]}}");
  }
  free_added(added, nadded);
  mp_strmap_free(&vm);
  mp_arena_free(&ar);
  free(mbuf);
  if (st == MP_OK && js->oom) st = mp_err(MP_ERR_NOMEM, "out of memory");
  return st;
}

/* spm.model of a DeBERTa-v2/v3 folder: what transformers' AutoTokenizer builds
 * (DebertaV2Converter: Strip + Precompiled + Replace(" {2,}", " "), Metaspace(always), Unigram
 * without byte fallback, [CLS] A [SEP] / [CLS] A [SEP] B:1 [SEP]:1, plus the folder's special and
 * added tokens resolved as transformers does): spm_model.c, checked against AutoTokenizer on
 * folder variants in tests/py/test_unigram.py. */
static mp_status legacy_spm(const char *dir, const char *path, mp_sb *js) {
  return mp_spm_folder_to_hf_json(path, dir, js);
}

mp_status mp_tok_legacy_json(const char *dir, mp_sb *out, char **label) {
  *label = NULL;
  char *vt = mp_path_join(dir, "vocab.txt"), *vj = mp_path_join(dir, "vocab.json"),
       *mt = mp_path_join(dir, "merges.txt"), *spm = mp_path_join(dir, "spm.model");
  mp_status st;
  if (!vt || !vj || !mt || !spm)
    st = mp_err(MP_ERR_NOMEM, "out of memory");
  else if (mp_is_file(spm)) {
    *label = strdup(spm);
    st = legacy_spm(dir, spm, out);
  } else if (mp_is_file(vj) && mp_is_file(mt)) {
    *label = strdup(vj);
    st = legacy_bpe(dir, vj, mt, out);
  } else if (mp_is_file(vt)) {
    *label = strdup(vt);
    st = legacy_wordpiece(dir, vt, out);
  } else {
    st = mp_err(
        MP_ERR_NOT_FOUND,
        "%s: no tokenizer files (expected tokenizer.json, or vocab.txt, or vocab.json + merges.txt, or spm.model)",
        dir);
  }
  free(vt);
  free(vj);
  free(mt);
  free(spm);
  return st;
}
