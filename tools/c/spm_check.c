/* spm_check: drives the Unigram / Precompiled / SentencePiece modules for the parity tests
 * (tests/py/test_unigram.py). Reads one JSON string literal per stdin line and writes one JSON
 * value per line:
 *
 *   spm_check normalize FILE      HF Precompiled normalizer of FILE (tokenizer.json or .model)
 *                                 -> normalized string
 *   spm_check unigram FILE        HF Unigram model of FILE (tokenizer.json, or a .model converted
 *                                 as transformers does) on one pre-tokenized piece -> [ids]
 *   spm_check spm FILE.model      SentencePiece's own encoder -> [ids]
 *   spm_check spm-normalize FILE.model   SentencePiece's own normalizer -> normalized string
 *   spm_check to-json FILE.model [--lower] [--split-by-punct] [--plain]
 *                                 prints the tokenizer.json transformers' converter would build
 *   spm_check info FILE.model     prints the parsed ModelProto fields as JSON
 *   spm_check folder-json DIR     the tokenizer.json AutoTokenizer builds for DIR/spm.model and
 *                                 DIR's tokenizer_config / special_tokens_map / added_tokens
 *
 * Exit status: 0 ok, 2 usage, 3 error (message on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/str.h"
#include "core/strbuf.h"
#include "tokenizer/precompiled.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/unigram.h"

static int fail(void) {
  fprintf(stderr, "spm_check: %s\n", mp_last_error());
  return 3;
}

/* Finds the first Precompiled normalizer in a tokenizer.json normalizer tree. */
static const mp_json *find_precompiled(const mp_json *n) {
  if (!n || n->type != MP_JSON_OBJECT) return NULL;
  const char *t = mp_json_get_str(n, "type", "");
  if (strcmp(t, "Precompiled") == 0) return n;
  const mp_json *seq = mp_json_get(n, "normalizers");
  if (seq && seq->type == MP_JSON_ARRAY)
    for (size_t i = 0; i < seq->len; i++) {
      const mp_json *r = find_precompiled(seq->items[i]);
      if (r) return r;
    }
  return NULL;
}

typedef struct loaded {
  mp_arena arena;
  mp_spm_model *spm;
  mp_precompiled *pc;
  mp_unigram *uni;
  mp_spm_processor *proc;
} loaded;

static mp_status load(const char *path, int want_proc, loaded *L) {
  memset(L, 0, sizeof *L);
  mp_arena_init(&L->arena, 0);
  if (mp_str_ends_with(path, ".json")) {
    mp_json *root;
    MP_TRY(mp_json_parse_file(path, &L->arena, &root));
    const mp_json *pc = find_precompiled(mp_json_get(root, "normalizer"));
    if (pc) MP_TRY(mp_precompiled_from_json(pc, path, &L->pc));
    const mp_json *model = mp_json_get(root, "model");
    if (model && strcmp(mp_json_get_str(model, "type", ""), "Unigram") == 0)
      MP_TRY(mp_unigram_from_json(model, path, &L->uni));
    return MP_OK;
  }
  MP_TRY(mp_spm_model_load(path, &L->spm));
  if (want_proc) return mp_spm_processor_create(L->spm, path, &L->proc);
  if (L->spm->normalizer.charsmap_len)
    MP_TRY(mp_precompiled_load(L->spm->normalizer.charsmap, L->spm->normalizer.charsmap_len, path, &L->pc));
  return mp_spm_unigram(L->spm, MP_UNIGRAM_HF, 0, path, &L->uni);
}

static void unload(loaded *L) {
  mp_spm_processor_free(L->proc);
  mp_unigram_free(L->uni);
  mp_precompiled_free(L->pc);
  mp_spm_model_free(L->spm);
  mp_arena_free(&L->arena);
}

static void put_ids(mp_sb *o, const mp_unigram_tokens *t) {
  mp_sb_putc(o, '[');
  for (size_t i = 0; i < t->n; i++)
    mp_sb_printf(o, i ? ",%d" : "%d", t->v[i].id);
  mp_sb_putc(o, ']');
}

static int info(const mp_spm_model *m) {
  mp_sb o;
  mp_sb_init(&o);
  mp_sb_printf(&o, "{\"n_pieces\":%zu,\"model_type\":%d,\"vocab_size\":%lld,\"byte_fallback\":%d,", m->n_pieces,
               m->model_type, (long long)m->vocab_size, m->byte_fallback);
  mp_sb_printf(&o,
               "\"unk_id\":%lld,\"bos_id\":%lld,\"eos_id\":%lld,\"pad_id\":%lld,\"unk_piece\":", (long long)m->unk_id,
               (long long)m->bos_id, (long long)m->eos_id, (long long)m->pad_id);
  mp_sb_json_str(&o, m->unk_piece, strlen(m->unk_piece));
  mp_sb_puts(&o, ",\"normalizer\":{\"name\":");
  mp_sb_json_str(&o, m->normalizer.name, strlen(m->normalizer.name));
  mp_sb_printf(
      &o, ",\"charsmap_len\":%zu,\"add_dummy_prefix\":%d,\"remove_extra_whitespaces\":%d,\"escape_whitespaces\":%d},",
      m->normalizer.charsmap_len, m->normalizer.add_dummy_prefix, m->normalizer.remove_extra_whitespaces,
      m->normalizer.escape_whitespaces);
  mp_sb_puts(&o, "\"pieces\":[");
  for (size_t i = 0; i < m->n_pieces; i++) {
    if (i) mp_sb_putc(&o, ',');
    mp_sb_putc(&o, '[');
    mp_sb_json_str(&o, m->pieces[i].piece, m->pieces[i].len);
    mp_sb_putc(&o, ',');
    mp_sb_json_f64(&o, m->pieces[i].score);
    mp_sb_printf(&o, ",%d]", m->pieces[i].type);
  }
  mp_sb_puts(&o, "]}\n");
  fwrite(o.buf, 1, o.len, stdout);
  mp_sb_free(&o);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: spm_check normalize|unigram|spm|spm-normalize|to-json|info FILE [options]\n");
    return 2;
  }
  const char *cmd = argv[1], *path = argv[2];
  int is_spm = !strcmp(cmd, "spm") || !strcmp(cmd, "spm-normalize");
  if (!strcmp(cmd, "folder-json")) {
    /* spm_check folder-json DIR: what AutoTokenizer builds for DIR/spm.model + config files */
    char *spm = mp_path_join(path, "spm.model");
    mp_sb sb;
    mp_sb_init(&sb);
    int rc = 0;
    if (mp_spm_folder_to_hf_json(spm, path, &sb) != MP_OK)
      rc = fail();
    else
      fwrite(sb.buf, 1, sb.len, stdout), putchar('\n');
    mp_sb_free(&sb);
    free(spm);
    return rc;
  }
  if (!strcmp(cmd, "to-json") || !strcmp(cmd, "info")) {
    mp_spm_model *m;
    if (mp_spm_model_load(path, &m) != MP_OK) return fail();
    int rc = 0;
    if (!strcmp(cmd, "info")) {
      rc = info(m);
    } else {
      mp_spm_hf_opts o = {0, 0, 1, NULL, 0, -1, -1};
      for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--lower"))
          o.do_lower_case = 1;
        else if (!strcmp(argv[i], "--split-by-punct"))
          o.split_by_punct = 1;
        else if (!strcmp(argv[i], "--plain"))
          o.deberta = 0;
      }
      mp_sb sb;
      mp_sb_init(&sb);
      if (mp_spm_to_hf_json(m, &o, &sb) != MP_OK)
        rc = fail();
      else
        fwrite(sb.buf, 1, sb.len, stdout), putchar('\n');
      mp_sb_free(&sb);
    }
    mp_spm_model_free(m);
    return rc;
  }
  if (strcmp(cmd, "normalize") && strcmp(cmd, "unigram") && !is_spm) {
    fprintf(stderr, "spm_check: unknown command %s\n", cmd);
    return 2;
  }
  loaded L;
  if (load(path, is_spm, &L) != MP_OK) {
    int rc = fail();
    unload(&L);
    return rc;
  }
  if ((!strcmp(cmd, "normalize") && !L.pc) || (!strcmp(cmd, "unigram") && !L.uni)) {
    fprintf(stderr, "spm_check: %s has no %s\n", path, L.pc ? "Unigram model" : "Precompiled normalizer");
    unload(&L);
    return 3;
  }
  mp_unigram_scratch scratch = {0};
  mp_unigram_tokens toks = {0};
  mp_sb out, norm;
  mp_sb_init(&out);
  mp_sb_init(&norm);
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  int rc = 0;
  size_t lineno = 0;
  while ((got = getline(&line, &cap, stdin)) >= 0) {
    lineno++;
    while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
      got--;
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_json *j;
    if (mp_json_parse(line, (size_t)got, "stdin", &a, &j) != MP_OK || j->type != MP_JSON_STRING) {
      fprintf(stderr, "spm_check: stdin line %zu is not a JSON string\n", lineno);
      mp_arena_free(&a);
      rc = 2;
      break;
    }
    mp_sb_clear(&out);
    mp_sb_clear(&norm);
    toks.n = 0;
    mp_status st;
    if (!strcmp(cmd, "normalize")) {
      st = mp_precompiled_normalize(L.pc, j->str, j->len, &norm, NULL);
      if (st == MP_OK) mp_sb_json_str(&out, norm.buf ? norm.buf : "", norm.len);
    } else if (!strcmp(cmd, "unigram")) {
      st = mp_unigram_encode(L.uni, &scratch, j->str, j->len, &toks);
      if (st == MP_OK) put_ids(&out, &toks);
    } else if (!strcmp(cmd, "spm-normalize")) {
      st = mp_spm_normalize(L.proc, j->str, j->len, &norm);
      if (st == MP_OK) mp_sb_json_str(&out, norm.buf ? norm.buf : "", norm.len);
    } else {
      st = mp_spm_encode(L.proc, &scratch, j->str, j->len, &norm, &toks);
      if (st == MP_OK) put_ids(&out, &toks);
    }
    mp_arena_free(&a);
    if (st != MP_OK) {
      /* an encoding error is an answer too (HF raises); report it as a JSON object */
      mp_sb_clear(&out);
      mp_sb_puts(&out, "{\"error\":");
      const char *e = mp_last_error();
      mp_sb_json_str(&out, e, strlen(e));
      mp_sb_putc(&out, '}');
    }
    mp_sb_putc(&out, '\n');
    fwrite(out.buf, 1, out.len, stdout);
  }
  free(line);
  free(toks.v);
  mp_unigram_scratch_free(&scratch);
  mp_sb_free(&out);
  mp_sb_free(&norm);
  unload(&L);
  return rc;
}
