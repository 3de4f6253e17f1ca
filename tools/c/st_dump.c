/* st_dump: test/dev tool over the safetensors reader/writer and the weights table (not part of
 * the product; tests/py/test_safetensors_ref.py drives it to cross-check against the Python
 * safetensors package, MLX and huggingface_hub).
 *
 *   st_dump dump PATH
 *       PATH = weights file, index.json or model folder. Prints one JSON object per line: first
 *       {"format": N, "files": [...], "count": N}, then per tensor in table order
 *       {"name", "dtype", "shape", "nbytes", "sha256", "file"}.
 *   st_dump metadata FILE.safetensors
 *       Prints the __metadata__ map as one JSON object.
 *   st_dump copy IN.safetensors OUT.safetensors
 *   st_dump shard IN.safetensors DIR STEM MAX_SHARD_BYTES
 *       Re-writes every tensor (file order) and the metadata of IN with mp_st_writer.
 * Errors go to stderr (mp_last_error) with exit status 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "core/strbuf.h"
#include "format/safetensors.h"
#include "format/weights.h"

static int fail(void) {
  fprintf(stderr, "st_dump: %s\n", mp_last_error());
  return 3;
}

static int cmd_dump(const char *path) {
  mp_weights *w;
  if (mp_weights_open(path, &w) != MP_OK) return fail();
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "{\"format\": %d, \"count\": %zu, \"files\": [", (int)mp_weights_get_format(w),
               mp_weights_count(w));
  for (size_t i = 0; i < mp_weights_file_count(w); i++) {
    if (i) mp_sb_puts(&sb, ", ");
    mp_sb_json_str(&sb, mp_weights_file(w, i), strlen(mp_weights_file(w, i)));
  }
  mp_sb_puts(&sb, "]}\n");
  fwrite(sb.buf, 1, sb.len, stdout);
  for (size_t i = 0; i < mp_weights_count(w); i++) {
    const mp_tensor *t = mp_weights_at(w, i);
    char hex[65];
    mp_sha256_hex(t->data, t->nbytes, hex);
    mp_sb_clear(&sb);
    mp_sb_puts(&sb, "{\"name\": ");
    mp_sb_json_str(&sb, t->name, strlen(t->name));
    mp_sb_printf(&sb, ", \"dtype\": \"%s\", \"shape\": [", mp_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
      mp_sb_printf(&sb, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    mp_sb_printf(&sb, "], \"nbytes\": %zu, \"sha256\": \"%s\", \"file\": ", t->nbytes, hex);
    const char *f = mp_weights_file_of(w, i);
    mp_sb_json_str(&sb, f, strlen(f));
    mp_sb_puts(&sb, "}\n");
    fwrite(sb.buf, 1, sb.len, stdout);
  }
  mp_sb_free(&sb);
  mp_weights_close(w);
  return 0;
}

static int cmd_metadata(const char *path) {
  mp_safetensors *st;
  if (mp_safetensors_open(path, &st) != MP_OK) return fail();
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_putc(&sb, '{');
  for (size_t i = 0; i < mp_safetensors_metadata_count(st); i++) {
    const char *k, *v;
    mp_safetensors_metadata_at(st, i, &k, &v);
    if (i) mp_sb_puts(&sb, ", ");
    mp_sb_json_str(&sb, k, strlen(k));
    mp_sb_puts(&sb, ": ");
    mp_sb_json_str(&sb, v, strlen(v));
  }
  mp_sb_puts(&sb, "}\n");
  fwrite(sb.buf, 1, sb.len, stdout);
  mp_sb_free(&sb);
  mp_safetensors_close(st);
  return 0;
}

static int cmd_copy(const char *in, const char *out, const char *dir, const char *stem, const char *max) {
  mp_safetensors *st;
  if (mp_safetensors_open(in, &st) != MP_OK) return fail();
  mp_st_writer *w;
  int rc = 0;
  if (mp_st_writer_create(&w) != MP_OK) {
    mp_safetensors_close(st);
    return fail();
  }
  for (size_t i = 0; i < mp_safetensors_metadata_count(st) && !rc; i++) {
    const char *k, *v;
    mp_safetensors_metadata_at(st, i, &k, &v);
    if (mp_st_writer_set_metadata(w, k, v) != MP_OK) rc = fail();
  }
  for (size_t i = 0; i < mp_safetensors_count(st) && !rc; i++) {
    const mp_tensor *t = mp_safetensors_at(st, i);
    if (mp_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes) != MP_OK) rc = fail();
  }
  if (!rc) {
    if (out) {
      if (mp_st_writer_finish(w, out) != MP_OK) rc = fail();
    } else {
      int nfiles = 0;
      if (mp_st_writer_finish_sharded(w, dir, stem, strtoull(max, NULL, 10), &nfiles) != MP_OK)
        rc = fail();
      else
        printf("{\"files\": %d}\n", nfiles);
    }
  }
  mp_st_writer_free(w);
  mp_safetensors_close(st);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "dump") == 0) return cmd_dump(argv[2]);
  if (argc == 3 && strcmp(argv[1], "metadata") == 0) return cmd_metadata(argv[2]);
  if (argc == 4 && strcmp(argv[1], "copy") == 0) return cmd_copy(argv[2], argv[3], NULL, NULL, NULL);
  if (argc == 6 && strcmp(argv[1], "shard") == 0) return cmd_copy(argv[2], NULL, argv[3], argv[4], argv[5]);
  fprintf(stderr, "usage: st_dump dump PATH | metadata FILE | copy IN OUT | shard IN DIR STEM MAX_BYTES\n");
  return 2;
}
