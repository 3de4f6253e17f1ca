/* mlxport tokenize: texts (or TAB-separated pairs) on stdin -> token ids, one line per input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "tokenizer/tokenizer.h"

const char mp_cmd_tokenize_summary[] = "tokenize lines of stdin with a model's tokenizer (HF-exact ids)";

static void usage(void) {
  printf("usage: mlxport tokenize --model DIR [--pair] [--max-length N] [--truncation S] [--padding P]\n"
         "                        [--no-special-tokens] [--threads N] [--json]\n"
         "\n"
         "Reads UTF-8 text from stdin, one input per line (a trailing \\r is dropped), and writes one\n"
         "output line per input, in input order. The ids are exactly those of Hugging Face `tokenizers`\n"
         "(transformers' fast tokenizer) for the same files and options.\n"
         "\n"
         "  --model DIR          model folder with tokenizer.json, or vocab.txt, or vocab.json +\n"
         "                       merges.txt, or spm.model (+ tokenizer_config.json)\n"
         "  --pair               each line is TEXT_A<TAB>TEXT_B (split at the first TAB)\n"
         "  --max-length N       maximum length including special tokens (default: none)\n"
         "  --truncation S       longest_first | only_first | only_second | none\n"
         "                       (default longest_first when --max-length is given, else none)\n"
         "  --padding P          none | longest | max_length (default none); padding is on the right\n"
         "                       with the tokenizer's pad token\n"
         "  --no-special-tokens  do not add [CLS]/[SEP] (<s>/</s>, ...)\n"
         "  --threads N          encode with N threads (default 1; output order is unchanged)\n"
         "  --json               {\"input_ids\":[...],\"attention_mask\":[...],\"token_type_ids\":[...]}\n"
         "                       per line; without it, the input ids separated by spaces\n"
         "  --stats              report on stderr the time of the encoding step alone (library batch\n"
         "                       call: inputs, tokens, wall and CPU seconds, tokens/s); used by bench/\n"
         "  --no-output          do not write the ids (with --stats, for benchmarks)\n"
         "\n"
         "Invalid UTF-8 is not an error: each ill-formed sequence is read as U+FFFD, exactly like\n"
         "Python's bytes.decode('utf-8', errors='replace'). An input that cannot be encoded (e.g.\n"
         "only_second without a pair, or a text too short for only_first/only_second) prints\n"
         "{\"error\": \"line N: ...\"} (--json) or an empty line, reports it on stderr, and the\n"
         "command exits with status 3 after writing every line.\n");
}

static void put_arr(mp_sb *o, const char *name, const int32_t *v, size_t n, int comma) {
  if (comma) mp_sb_putc(o, ',');
  mp_sb_printf(o, "\"%s\":[", name);
  char tmp[16];
  for (size_t i = 0; i < n; i++) {
    int k = snprintf(tmp, sizeof tmp, i ? ",%d" : "%d", (int)v[i]);
    mp_sb_append(o, tmp, (size_t)k);
  }
  mp_sb_putc(o, ']');
}

static void put_row(mp_sb *o, int json, const int32_t *ids, const int32_t *mask, const int32_t *types, size_t n) {
  if (json) {
    mp_sb_putc(o, '{');
    put_arr(o, "input_ids", ids, n, 0);
    put_arr(o, "attention_mask", mask, n, 1);
    put_arr(o, "token_type_ids", types, n, 1);
    mp_sb_puts(o, "}\n");
  } else {
    char tmp[16];
    for (size_t i = 0; i < n; i++) {
      int k = snprintf(tmp, sizeof tmp, i ? " %d" : "%d", (int)ids[i]);
      mp_sb_append(o, tmp, (size_t)k);
    }
    mp_sb_putc(o, '\n');
  }
}

static int flush_out(mp_sb *o) {
  if (o->len && fwrite(o->buf, 1, o->len, stdout) != o->len) return -1;
  mp_sb_clear(o);
  return 0;
}

int mp_cmd_tokenize(int argc, char **argv) {
  const char *cmd = argv[0];
  const char *model = NULL, *trunc_s = NULL, *pad_s = NULL;
  long long max_len = 0, threads = 1;
  int pair = 0, json = 0, no_special = 0, stats = 0, no_output = 0;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage();
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--model", &v)) {
      if (!v) return MP_EXIT_USAGE;
      model = v;
    } else if (mp_cli_opt(argc, argv, &i, "--max-length", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--max-length", v, 1, 1 << 24, &max_len)) return MP_EXIT_USAGE;
    } else if (mp_cli_opt(argc, argv, &i, "--threads", &v)) {
      if (!v || mp_cli_opt_int(cmd, "--threads", v, 1, 64, &threads)) return MP_EXIT_USAGE;
    } else if (mp_cli_opt(argc, argv, &i, "--truncation", &v)) {
      if (!v) return MP_EXIT_USAGE;
      trunc_s = v;
    } else if (mp_cli_opt(argc, argv, &i, "--padding", &v)) {
      if (!v) return MP_EXIT_USAGE;
      pad_s = v;
    } else if (!strcmp(argv[i], "--pair"))
      pair = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--no-special-tokens"))
      no_special = 1;
    else if (!strcmp(argv[i], "--stats"))
      stats = 1;
    else if (!strcmp(argv[i], "--no-output"))
      no_output = 1;
    else
      return mp_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
  }
  if (!model) return mp_cli_usage_error(cmd, "--model DIR is required");
  mp_tok_options o;
  mp_tok_options_init(&o);
  o.add_special_tokens = !no_special;
  o.max_length = (size_t)max_len;
  o.truncation = max_len > 0 ? MP_TRUNC_LONGEST_FIRST : MP_TRUNC_NONE;
  if (trunc_s && mp_trunc_strategy_parse(trunc_s, &o.truncation))
    return mp_cli_usage_error(cmd, "--truncation must be longest_first, only_first, only_second or none (got '%s')",
                              trunc_s);
  if (pad_s && mp_pad_strategy_parse(pad_s, &o.padding))
    return mp_cli_usage_error(cmd, "--padding must be none, longest or max_length (got '%s')", pad_s);
  if (o.padding == MP_PAD_MAX_LENGTH && max_len == 0)
    return mp_cli_usage_error(cmd, "--padding max_length needs --max-length");

  mp_tokenizer *tok = NULL;
  mp_status st = mp_tokenizer_open(model, &tok);
  if (st != MP_OK) return mp_cli_fail(cmd, st);

  /* read all of stdin */
  mp_sb in;
  mp_sb_init(&in);
  char chunk[1 << 16];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, stdin)) > 0)
    mp_sb_append(&in, chunk, got);
  if (in.oom) {
    mp_tokenizer_close(tok);
    mp_sb_free(&in);
    fprintf(stderr, "mlxport %s: error: out of memory reading stdin\n", cmd);
    return MP_EXIT_ERROR;
  }
  /* split into lines */
  size_t n = 0, cap = 1024;
  const char **a = malloc(cap * sizeof *a), **b = malloc(cap * sizeof *b);
  size_t *al = malloc(cap * sizeof *al), *bl = malloc(cap * sizeof *bl);
  int *bad = NULL;
  int rc = MP_EXIT_OK;
  for (size_t i = 0; a && b && al && bl && i < in.len;) {
    size_t e = i;
    while (e < in.len && in.buf[e] != '\n')
      e++;
    size_t len = e - i;
    if (len && in.buf[i + len - 1] == '\r') len--;
    if (n == cap) {
      cap *= 2;
      const char **na = realloc(a, cap * sizeof *a), **nb = NULL;
      if (na) a = na;
      nb = realloc(b, cap * sizeof *b);
      if (nb) b = nb;
      size_t *nal = realloc(al, cap * sizeof *al), *nbl = NULL;
      if (nal) al = nal;
      nbl = realloc(bl, cap * sizeof *bl);
      if (nbl) bl = nbl;
      if (!na || !nb || !nal || !nbl) {
        n = 0;
        rc = -1;
        break;
      }
    }
    a[n] = in.buf + i;
    al[n] = len;
    b[n] = NULL;
    bl[n] = 0;
    if (pair) {
      const char *tab = memchr(a[n], '\t', len);
      if (tab) {
        al[n] = (size_t)(tab - a[n]);
        b[n] = tab + 1;
        bl[n] = len - al[n] - 1;
      }
    }
    n++;
    i = e + 1;
  }
  if (!a || !b || !al || !bl || rc == -1) {
    fprintf(stderr, "mlxport %s: error: out of memory\n", cmd);
    rc = MP_EXIT_ERROR;
    goto done;
  }
  bad = calloc(n ? n : 1, sizeof *bad);
  if (!bad) {
    rc = MP_EXIT_ERROR;
    goto done;
  }
  if (pair)
    for (size_t i = 0; i < n; i++)
      if (!b[i]) bad[i] = 1;

  mp_sb out;
  mp_sb_init(&out);
  int any_bad = 0;
  for (size_t i = 0; i < n; i++)
    any_bad |= bad[i];
  mp_tok_batch bt;
  struct timespec t0, t1, c0, c1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  st = any_bad ? MP_ERR_INVALID_ARG
               : mp_tokenizer_encode_batch_n(tok, n, a, al, pair ? b : NULL, pair ? bl : NULL, &o, (int)threads, &bt);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  if (st == MP_OK && stats) {
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
    size_t ntok = 0;
    for (size_t i = 0; i < n; i++)
      ntok += bt.n_real[i];
    fprintf(stderr,
            "{\"inputs\":%zu,\"tokens\":%zu,\"seconds\":%.6f,\"cpu_seconds\":%.6f,\"tokens_per_s\":%.1f,\"threads\":%"
            "lld}\n",
            n, ntok, sec, cpu, sec > 0 ? (double)ntok / sec : 0.0, threads);
  }
  if (st == MP_OK && no_output) {
    mp_tok_batch_free(&bt);
  } else if (st == MP_OK) {
    for (size_t i = 0; i < n; i++) {
      size_t off = i * bt.seq_len;
      put_row(&out, json, bt.input_ids + off, bt.attention_mask + off, bt.token_type_ids + off, bt.lens[i]);
      if (out.len > (1 << 20) && flush_out(&out)) break;
    }
    mp_tok_batch_free(&bt);
  } else {
    /* some rows fail: encode them one by one, report the failures, pad the others together */
    mp_tok_options one = o;
    one.padding = MP_PAD_NONE;
    mp_tok_encoding *encs = calloc(n ? n : 1, sizeof *encs);
    char **errs = calloc(n ? n : 1, sizeof *errs);
    size_t longest = 0;
    for (size_t i = 0; encs && errs && i < n; i++) {
      if (bad[i]) {
        errs[i] = strdup("--pair needs TEXT_A<TAB>TEXT_B but the line has no TAB");
        continue;
      }
      if (mp_tokenizer_encode(tok, a[i], al[i], b[i], bl[i], &one, &encs[i]) != MP_OK) {
        errs[i] = strdup(mp_last_error());
        bad[i] = 1;
      } else if (encs[i].len > longest)
        longest = encs[i].len;
    }
    size_t target = o.padding == MP_PAD_LONGEST ? longest : o.padding == MP_PAD_MAX_LENGTH ? o.max_length : 0;
    int32_t pad = mp_tokenizer_special_id(tok, MP_TOK_PAD);
    if (pad < 0) pad = 0;
    for (size_t i = 0; encs && errs && i < n; i++) {
      if (bad[i]) {
        fprintf(stderr, "mlxport %s: line %zu: %s\n", cmd, i + 1, errs[i] ? errs[i] : "error");
        if (json) {
          char msg[64];
          snprintf(msg, sizeof msg, "line %zu: ", i + 1);
          mp_sb_puts(&out, "{\"error\":");
          mp_sb sm;
          mp_sb_init(&sm);
          mp_sb_puts(&sm, msg);
          mp_sb_puts(&sm, errs[i] ? errs[i] : "error");
          mp_sb_json_str(&out, sm.buf, sm.len);
          mp_sb_free(&sm);
          mp_sb_puts(&out, "}\n");
        } else
          mp_sb_putc(&out, '\n');
        rc = MP_EXIT_ERROR;
        continue;
      }
      mp_tok_encoding *e = &encs[i];
      size_t len = e->len < target ? target : e->len;
      int32_t *ids = malloc((len ? len : 1) * sizeof *ids), *mask = malloc((len ? len : 1) * sizeof *mask),
              *types = malloc((len ? len : 1) * sizeof *types);
      if (ids && mask && types) {
        for (size_t k = 0; k < len; k++) {
          int real = k < e->len;
          ids[k] = real ? e->input_ids[k] : pad;
          mask[k] = real ? 1 : 0;
          types[k] = real ? e->token_type_ids[k] : 0;
        }
        put_row(&out, json, ids, mask, types, len);
      } else
        rc = MP_EXIT_ERROR;
      free(ids);
      free(mask);
      free(types);
    }
    if (!encs || !errs) {
      fprintf(stderr, "mlxport %s: error: out of memory\n", cmd);
      rc = MP_EXIT_ERROR;
    }
    for (size_t i = 0; encs && i < n; i++)
      mp_tok_encoding_free(&encs[i]);
    for (size_t i = 0; errs && i < n; i++)
      free(errs[i]);
    free(encs);
    free(errs);
  }
  if (out.oom || flush_out(&out) || fflush(stdout)) {
    fprintf(stderr, "mlxport %s: error: writing stdout failed\n", cmd);
    rc = MP_EXIT_ERROR;
  }
  mp_sb_free(&out);
done:
  free(a);
  free(b);
  free(al);
  free(bl);
  free(bad);
  mp_sb_free(&in);
  mp_tokenizer_close(tok);
  return rc;
}
