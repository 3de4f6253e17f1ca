/* safetensors reader/writer, shards and the weights table: round trips for every dtype, shard
 * layouts, and a corpus of malformed files generated here, each refused with a precise message.
 * (The cross-check against the Python safetensors package and MLX is tests/py/test_safetensors_ref.py.) */
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "format/safetensors.h"
#include "format/weights.h"
#include "testlib.h"

static void put_file_raw(const char *dir, const char *name, const char *text) {
  char *p = mp_path_join(dir, name);
  CHECK_OK(mp_write_file_atomic(p, text, strlen(text)));
  free(p);
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint8_t rnd8(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint8_t)(g_rng >> 24);
}

static char *tmp_path(const char *name) { return mp_path_join(mp_test_tmpdir(), name); }

typedef struct {
  char name[64];
  mp_dtype dtype;
  int ndim;
  int64_t shape[MP_MAX_DIMS];
  uint8_t *data;
  size_t nbytes;
} ref_tensor;

static void ref_make(ref_tensor *r, const char *name, mp_dtype dt, int ndim, const int64_t *shape) {
  snprintf(r->name, sizeof r->name, "%s", name);
  r->dtype = dt;
  r->ndim = ndim;
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    r->shape[i] = shape[i];
    numel *= (size_t)shape[i];
  }
  r->nbytes = numel * mp_dtype_size(dt);
  r->data = malloc(r->nbytes ? r->nbytes : 1);
  for (size_t i = 0; i < r->nbytes; i++)
    r->data[i] = rnd8();
  if (dt == MP_BOOL)
    for (size_t i = 0; i < r->nbytes; i++)
      r->data[i] &= 1;
}

static int tensor_matches(const mp_tensor *t, const ref_tensor *r) {
  if (!t || t->dtype != r->dtype || t->ndim != r->ndim || t->nbytes != r->nbytes) return 0;
  for (int i = 0; i < r->ndim; i++)
    if (t->shape[i] != r->shape[i]) return 0;
  if (!mp_tensor_is_contiguous(t)) return 0;
  return r->nbytes == 0 || memcmp(t->data, r->data, r->nbytes) == 0;
}

/* Every dtype, scalars, zero-size tensors, metadata; write, read back, compare. */
static void test_roundtrip_all_dtypes(void) {
  static const int64_t shapes[][3] = {{3, 5, 0}, {0, 0, 0}, {0, 0, 0}, {2, 0, 3}, {7, 0, 0}, {1, 1, 1}};
  static const int ndims[] = {2, 0, 1, 3, 1, 3};
  enum { NS = 6 };
  ref_tensor refs[MP_DTYPE_COUNT * NS];
  size_t nr = 0;
  mp_st_writer *w;
  CHECK_OK(mp_st_writer_create(&w));
  REQUIRE(w);
  for (int d = 1; d < MP_DTYPE_COUNT; d++) {
    for (int k = 0; k < NS; k++) {
      char name[64];
      snprintf(name, sizeof name, "layer.%s.t%d", mp_dtype_name((mp_dtype)d), k);
      ref_make(&refs[nr], name, (mp_dtype)d, ndims[k], shapes[k]);
      if (k % 2) /* copy, then scribble over the source: the writer must have its own copy */
      {
        uint8_t *tmp = malloc(refs[nr].nbytes ? refs[nr].nbytes : 1);
        memcpy(tmp, refs[nr].data, refs[nr].nbytes);
        CHECK_OK(mp_st_writer_add_copy(w, name, (mp_dtype)d, ndims[k], shapes[k], tmp, refs[nr].nbytes));
        memset(tmp, 0xAB, refs[nr].nbytes);
        free(tmp);
      } else {
        CHECK_OK(mp_st_writer_add(w, name, (mp_dtype)d, ndims[k], shapes[k], refs[nr].data, refs[nr].nbytes));
      }
      nr++;
    }
  }
  CHECK_OK(mp_st_writer_set_metadata(w, "format", "pt"));
  CHECK_OK(mp_st_writer_set_metadata(w, "note", "x\"y\\z \xc3\xa9"));
  CHECK_OK(mp_st_writer_set_metadata(w, "format", "mlx")); /* replaces */
  uint64_t total = 0;
  for (size_t i = 0; i < nr; i++)
    total += refs[i].nbytes;
  CHECK(mp_st_writer_total_bytes(w) == total);
  /* writer refuses bad input */
  int64_t sh[1] = {4};
  CHECK(mp_st_writer_add(w, refs[0].name, MP_F32, 1, sh, refs[0].data, 16) == MP_ERR_INVALID_ARG);
  CHECK(strstr(mp_last_error(), "twice") != NULL);
  CHECK(mp_st_writer_add(w, "bad", MP_F32, 1, sh, refs[0].data, 15) == MP_ERR_INVALID_ARG);
  CHECK(mp_st_writer_add(w, "__metadata__", MP_F32, 1, sh, refs[0].data, 16) == MP_ERR_INVALID_ARG);
  CHECK(mp_st_writer_add(w, "bad2", MP_DTYPE_INVALID, 1, sh, refs[0].data, 16) == MP_ERR_INVALID_ARG);

  char *path = tmp_path("all.safetensors");
  CHECK_OK(mp_st_writer_finish(w, path));
  mp_st_writer_free(w);

  mp_safetensors *st = NULL;
  CHECK_OK(mp_safetensors_open(path, &st));
  REQUIRE(st);
  CHECK(mp_safetensors_count(st) == nr);
  CHECK_STREQ(mp_safetensors_path(st), path);
  for (size_t i = 0; i < nr; i++)
    CHECKF(tensor_matches(mp_safetensors_find(st, refs[i].name), &refs[i]), "%s", refs[i].name);
  CHECK(mp_safetensors_find(st, "nope") == NULL);
  /* file order = ascending offsets, each tensor aligned to its element size, data block 8-aligned */
  CHECK(mp_safetensors_data_offset(st) % 8 == 0);
  const uint8_t *block = NULL;
  for (size_t i = 0; i < mp_safetensors_count(st); i++) {
    const mp_tensor *t = mp_safetensors_at(st, i);
    if (!block) block = t->data;
    CHECK(((const uint8_t *)t->data - block) % (ptrdiff_t)mp_dtype_size(t->dtype) == 0);
    if (i)
      CHECK((const uint8_t *)t->data ==
            (const uint8_t *)mp_safetensors_at(st, i - 1)->data + mp_safetensors_at(st, i - 1)->nbytes);
  }
  CHECK(mp_safetensors_at(st, nr) == NULL);
  CHECK(mp_safetensors_metadata_count(st) == 2);
  CHECK_STREQ(mp_safetensors_metadata(st, "format"), "mlx");
  CHECK_STREQ(mp_safetensors_metadata(st, "note"), "x\"y\\z \xc3\xa9");
  CHECK(mp_safetensors_metadata(st, "absent") == NULL);
  const char *k, *v;
  mp_safetensors_metadata_at(st, 0, &k, &v);
  CHECK(k && v);
  CHECK(mp_safetensors_file_size(st) == (uint64_t)mp_file_size(path));
  mp_safetensors_close(st);

  /* the same through the weights table */
  mp_weights *wt = NULL;
  CHECK_OK(mp_weights_open(path, &wt));
  REQUIRE(wt);
  CHECK(mp_weights_get_format(wt) == MP_WEIGHTS_SAFETENSORS);
  CHECK(mp_weights_count(wt) == nr);
  CHECK(mp_weights_file_count(wt) == 1);
  CHECK_STREQ(mp_weights_file(wt, 0), path);
  CHECK_STREQ(mp_weights_metadata(wt, "format"), "mlx");
  for (size_t i = 0; i < nr; i++)
    CHECK(tensor_matches(mp_weights_find(wt, refs[i].name), &refs[i]));
  mp_weights_close(wt);

  /* header: 8-byte length, padded with spaces, valid JSON */
  char *buf;
  size_t len;
  CHECK_OK(mp_read_file(path, &buf, &len, 1 << 26));
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | (uint8_t)buf[i];
  CHECK(n % 8 == 0 && n + 8 <= len);
  CHECK(buf[8] == '{');
  size_t e = 8 + (size_t)n;
  while (e > 9 && buf[e - 1] == ' ')
    e--;
  CHECK(buf[e - 1] == '}');
  free(buf);
  free(path);
  for (size_t i = 0; i < nr; i++)
    free(refs[i].data);
}

static void test_empty_and_memory(void) {
  mp_st_writer *w;
  CHECK_OK(mp_st_writer_create(&w));
  char *path = tmp_path("empty.safetensors");
  CHECK_OK(mp_st_writer_finish(w, path));
  mp_st_writer_free(w);
  char *buf;
  size_t len;
  CHECK_OK(mp_read_file(path, &buf, &len, 1 << 20));
  CHECK(len == 16); /* "{}" padded to 8 */
  mp_safetensors *st;
  CHECK_OK(mp_safetensors_open_memory(buf, len, "mem", &st));
  CHECK(mp_safetensors_count(st) == 0 && mp_safetensors_metadata_count(st) == 0);
  mp_safetensors_close(st);
  mp_safetensors_close(NULL);
  mp_st_writer_free(NULL);
  mp_weights_close(NULL);
  free(buf);
  free(path);
}

/* ~1,000 tensors: every lookup finds the right one. */
static void test_many_tensors(void) {
  mp_st_writer *w;
  CHECK_OK(mp_st_writer_create(&w));
  enum { N = 1200 };
  static int32_t vals[N];
  int64_t one = 1;
  for (int i = 0; i < N; i++) {
    char name[64];
    vals[i] = i * 7 + 1;
    snprintf(name, sizeof name, "encoder.layer.%d.attention.weight", i);
    CHECK_OK(mp_st_writer_add(w, name, MP_I32, 1, &one, &vals[i], 4));
  }
  char *path = tmp_path("many.safetensors");
  CHECK_OK(mp_st_writer_finish(w, path));
  mp_st_writer_free(w);
  mp_weights *wt;
  CHECK_OK(mp_weights_open(path, &wt));
  REQUIRE(wt);
  CHECK(mp_weights_count(wt) == N);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    char name[64];
    snprintf(name, sizeof name, "encoder.layer.%d.attention.weight", i);
    const mp_tensor *t = mp_weights_find(wt, name);
    int32_t v;
    if (!t) {
      bad++;
      continue;
    }
    memcpy(&v, t->data, 4);
    if (v != vals[i]) bad++;
  }
  CHECK(bad == 0);
  CHECK(mp_weights_find(wt, "encoder.layer.1200.attention.weight") == NULL);
  mp_weights_close(wt);
  free(path);
}

/* Sharding: several limits, including one smaller than a tensor. */
static void test_sharding(void) {
  static const size_t sizes[] = {40, 8, 200, 16, 16, 0, 64, 24, 8, 120};
  enum { NT = 10 };
  ref_tensor refs[NT];
  uint64_t total = 0;
  for (int i = 0; i < NT; i++) {
    char name[32];
    snprintf(name, sizeof name, "w%02d", NT - i); /* names not in insertion order */
    int64_t sh[1] = {(int64_t)(sizes[i] / 4)};
    ref_make(&refs[i], name, MP_F32, 1, sh);
    total += refs[i].nbytes;
  }
  static const uint64_t limits[] = {0, 1, 50, 100, 128, 250, 100000};
  for (size_t li = 0; li < sizeof limits / sizeof *limits; li++) {
    mp_st_writer *w;
    CHECK_OK(mp_st_writer_create(&w));
    for (int i = 0; i < NT; i++)
      CHECK_OK(mp_st_writer_add(w, refs[i].name, MP_F32, 1, refs[i].shape, refs[i].data, refs[i].nbytes));
    CHECK_OK(mp_st_writer_set_metadata(w, "format", "pt"));
    char sub[64];
    snprintf(sub, sizeof sub, "shard_%llu", (unsigned long long)limits[li]);
    char *dir = tmp_path(sub);
    int nfiles = 0;
    CHECK_OK(mp_st_writer_finish_sharded(w, dir, "model", limits[li], &nfiles));
    mp_st_writer_free(w);
    char *idx = mp_path_join(dir, "model.safetensors.index.json");
    char *single = mp_path_join(dir, "model.safetensors");
    if (limits[li] == 0 || limits[li] >= total) {
      CHECK(nfiles == 1);
      CHECK(mp_is_file(single) && !mp_path_exists(idx));
    } else {
      CHECK(nfiles > 1);
      CHECK(!mp_path_exists(single) && mp_is_file(idx));
      /* index: total_size, every tensor mapped to a shard named model-0000k-of-0000n */
      mp_arena a;
      mp_arena_init(&a, 0);
      mp_json *j;
      CHECK_OK(mp_json_parse_file(idx, &a, &j));
      CHECK(mp_json_get_int(mp_json_get(j, "metadata"), "total_size", -1) == (int64_t)total);
      const mp_json *wm = mp_json_get(j, "weight_map");
      CHECK(wm && wm->len == NT);
      for (size_t i = 0; wm && i < wm->len; i++) {
        int k = 0, n = 0;
        CHECK(sscanf(wm->items[i]->str, "model-%05d-of-%05d.safetensors", &k, &n) == 2 && n == nfiles && k >= 1 &&
              k <= n);
        if (i) CHECK(strcmp(wm->keys[i - 1], wm->keys[i]) < 0); /* sorted like json.dumps(sort_keys=True) */
      }
      mp_arena_free(&a);
      /* every shard within the limit unless it holds a single larger tensor */
      for (int k = 1; k <= nfiles; k++) {
        char fn[128];
        snprintf(fn, sizeof fn, "model-%05d-of-%05d.safetensors", k, nfiles);
        char *p = mp_path_join(dir, fn);
        mp_safetensors *st;
        CHECK_OK(mp_safetensors_open(p, &st));
        if (st) {
          uint64_t b = 0;
          for (size_t i = 0; i < mp_safetensors_count(st); i++)
            b += mp_safetensors_at(st, i)->nbytes;
          CHECKF(b <= limits[li] || mp_safetensors_count(st) == 1, "shard %s holds %llu bytes", fn,
                 (unsigned long long)b);
          CHECK_STREQ(mp_safetensors_metadata(st, "format"), "pt");
        }
        mp_safetensors_close(st);
        free(p);
      }
    }
    /* read back through the weights table, from the folder */
    mp_weights *wt = NULL;
    CHECK_OK(mp_weights_open(dir, &wt));
    if (wt) {
      CHECK(mp_weights_get_format(wt) == (nfiles > 1 ? MP_WEIGHTS_SAFETENSORS_SHARDED : MP_WEIGHTS_SAFETENSORS));
      CHECK(mp_weights_file_count(wt) == (size_t)nfiles);
      CHECK(mp_weights_count(wt) == NT);
      for (int i = 0; i < NT; i++)
        CHECK(tensor_matches(mp_weights_find(wt, refs[i].name), &refs[i]));
    }
    mp_weights_close(wt);
    free(idx);
    free(single);
    free(dir);
  }
  /* the hub's rule, spelled out for limit 50 and sizes 40 8 200 16 16 0 64 24 8 120:
   * huggingface_hub appends a too-large tensor's shard at once and the open shard when it closes:
   * [40 8] open; 200 -> shard 1; 16 closes [40 8] -> shard 2; [16 16 0] open; 64 -> shard 3;
   * 24 closes [16 16 0] -> shard 4; [24 8] open; 120 -> shard 5; the end closes [24 8] -> shard 6.
   * (tests/py/test_safetensors_ref.py checks this against huggingface_hub itself.) */
  {
    mp_st_writer *w;
    CHECK_OK(mp_st_writer_create(&w));
    for (int i = 0; i < NT; i++)
      CHECK_OK(mp_st_writer_add(w, refs[i].name, MP_F32, 1, refs[i].shape, refs[i].data, refs[i].nbytes));
    char *dir = tmp_path("shard_rule");
    int nfiles = 0;
    CHECK_OK(mp_st_writer_finish_sharded(w, dir, "model", 50, &nfiles));
    mp_st_writer_free(w);
    CHECK(nfiles == 6);
    mp_weights *wt = NULL;
    CHECK_OK(mp_weights_open(dir, &wt));
    static const int expect_shard[NT] = {2, 2, 1, 4, 4, 4, 3, 6, 6, 5};
    for (int i = 0; wt && i < NT; i++) {
      size_t ti;
      for (ti = 0; ti < mp_weights_count(wt); ti++)
        if (strcmp(mp_weights_at(wt, ti)->name, refs[i].name) == 0) break;
      char fn[64];
      snprintf(fn, sizeof fn, "model-%05d-of-00006.safetensors", expect_shard[i]);
      const char *f = mp_weights_file_of(wt, ti);
      CHECKF(f && strcmp(mp_path_basename(f), fn) == 0, "%s in %s, expected %s", refs[i].name, f ? f : "?", fn);
    }
    mp_weights_close(wt);
    free(dir);
  }
  for (int i = 0; i < NT; i++)
    free(refs[i].data);
}

static int count_files(const char *dir, const char *suffix) {
  int n = 0;
  for (int k = 1; k <= 9; k++) {
    for (int of = 1; of <= 9; of++) {
      char fn[64];
      snprintf(fn, sizeof fn, "model-%05d-of-%05d%s", k, of, suffix);
      char *p = mp_path_join(dir, fn);
      n += mp_is_file(p);
      free(p);
    }
  }
  return n;
}

/* Re-writing into the same folder with another shard size leaves no stale weight files behind
 * (a stale model.safetensors would shadow the new index), and leaves other files alone. */
static void test_rewrite_cleans_stale(void) {
  char *dir = tmp_path("rewrite");
  CHECK_OK(mp_mkdirs(dir));
  put_file_raw(dir, "config.json", "{}");
  put_file_raw(dir, "other-00001-of-00002.safetensors", "x");
  static float data[64];
  static const uint64_t limits[] = {50, 100, 0, 50, 30};
  static const int want_files[] = {4, 2, 1, 4, 7};
  for (size_t li = 0; li < sizeof limits / sizeof *limits; li++) {
    mp_st_writer *w;
    CHECK_OK(mp_st_writer_create(&w));
    static const int64_t n4[] = {10, 2, 8, 4, 4, 0, 4, 6, 2};
    for (int i = 0; i < 9; i++) {
      char name[16];
      snprintf(name, sizeof name, "t%d", i);
      CHECK_OK(mp_st_writer_add(w, name, MP_F32, 1, &n4[i], data, (size_t)n4[i] * 4));
    }
    int nfiles = 0;
    CHECK_OK(mp_st_writer_finish_sharded(w, dir, "model", limits[li], &nfiles));
    mp_st_writer_free(w);
    CHECKF(nfiles == want_files[li], "limit %llu: %d files", (unsigned long long)limits[li], nfiles);
    char *single = mp_path_join(dir, "model.safetensors"), *idx = mp_path_join(dir, "model.safetensors.index.json");
    CHECK(mp_is_file(single) == (nfiles == 1));
    CHECK(mp_is_file(idx) == (nfiles > 1));
    CHECKF(count_files(dir, ".safetensors") == (nfiles > 1 ? nfiles : 0), "limit %llu: %d shard files",
           (unsigned long long)limits[li], count_files(dir, ".safetensors"));
    mp_weights *wt = NULL;
    CHECK_OK(mp_weights_open(dir, &wt));
    CHECK(mp_weights_count(wt) == 9 && mp_weights_file_count(wt) == (size_t)nfiles);
    mp_weights_close(wt);
    free(single);
    free(idx);
  }
  char *p = mp_path_join(dir, "config.json"), *q = mp_path_join(dir, "other-00001-of-00002.safetensors");
  CHECK(mp_is_file(p) && mp_is_file(q));
  free(p);
  free(q);
  free(dir);
}

/* ---- malformed files ---- */

/* 8-byte length + header + data_len zero bytes. hdr_len_override != UINT64_MAX replaces the length. */
static size_t make_file(uint8_t *out, size_t cap, const char *hdr, size_t data_len, uint64_t len_override,
                        int use_override) {
  size_t h = strlen(hdr);
  uint64_t n = use_override ? len_override : h;
  if (8 + h + data_len > cap) return 0;
  for (int i = 0; i < 8; i++)
    out[i] = (uint8_t)(n >> (8 * i));
  memcpy(out + 8, hdr, h);
  memset(out + 8 + h, 0, data_len);
  return 8 + h + data_len;
}

static void expect_reject(const char *label, const uint8_t *buf, size_t len, mp_status want, const char *needle) {
  char fname[128];
  snprintf(fname, sizeof fname, "bad_%s.safetensors", label);
  char *path = tmp_path(fname);
  CHECK_OK(mp_write_file_atomic(path, len ? (const void *)buf : "", len));
  mp_safetensors *st = (mp_safetensors *)1;
  mp_status s = mp_safetensors_open(path, &st);
  CHECKF(s == want, "%s: status %d (%s), want %d", label, (int)s, mp_last_error(), (int)want);
  CHECK(st == NULL);
  CHECKF(strstr(mp_last_error(), path) != NULL, "%s: message lacks the path: %s", label, mp_last_error());
  CHECKF(strstr(mp_last_error(), needle) != NULL, "%s: message lacks '%s': %s", label, needle, mp_last_error());
  if (s == MP_OK) mp_safetensors_close(st);
  /* same through the in-memory reader and the weights table */
  s = mp_safetensors_open_memory(buf, len, "memfile", &st);
  CHECKF(s == want && strstr(mp_last_error(), "memfile") && strstr(mp_last_error(), needle), "%s (memory): %s", label,
         mp_last_error());
  if (s == MP_OK) mp_safetensors_close(st);
  mp_weights *w = NULL;
  s = mp_weights_open(path, &w);
  CHECKF(s == want && strstr(mp_last_error(), needle), "%s (weights): %s", label, mp_last_error());
  mp_weights_close(w);
  free(path);
}

#define T1 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void test_malformed_headers(void) {
  static uint8_t buf[4096];
  size_t n;
  const uint64_t U = 0;
  struct {
    const char *label, *hdr;
    size_t data_len;
    mp_status want;
    const char *needle;
  } cases[] = {
      {"bad_json", "{\"a\": {", 0, MP_ERR_FORMAT, "invalid JSON"},
      {"bad_json2", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, MP_ERR_FORMAT, "header:1:"},
      {"not_utf8", "{\"a\xff\":{}}", 0, MP_ERR_FORMAT, "invalid JSON"},
      {"not_object", "[1,2]", 0, MP_ERR_FORMAT, "header is a JSON array"},
      {"entry_not_object", "{\"a\":5}", 0, MP_ERR_FORMAT, "tensor 'a' is a JSON number"},
      {"unknown_key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8, MP_ERR_FORMAT,
       "unknown key 'extra'"},
      {"dup_key", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
       MP_ERR_FORMAT, "'dtype' appears twice"},
      {"missing_dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT, "missing key 'dtype'"},
      {"missing_shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT, "missing key 'shape'"},
      {"missing_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, MP_ERR_FORMAT, "missing key 'data_offsets'"},
      {"unknown_dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT,
       "unknown dtype 'F33'"},
      {"dtype_not_string", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT,
       "dtype is a JSON number"},
      {"fp8_dtype", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, MP_ERR_UNSUPPORTED,
       "dtype F8_E4M3"},
      {"shape_not_list", "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT,
       "shape is a JSON number"},
      {"shape_negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT,
       "shape[0] is not a non-negative integer"},
      {"shape_float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2, 1.5],\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT,
       "shape[1] is not a non-negative integer"},
      {"shape_absurd", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 8,
       MP_ERR_FORMAT, "absurd"},
      {"shape_absurd2", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8,
       MP_ERR_FORMAT, "absurd"},
      {"shape_huge_number", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT,
       "shape[0]"},
      {"too_many_dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
       MP_ERR_UNSUPPORTED, "9 dimensions"},
      {"size_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20, MP_ERR_FORMAT,
       "= 24 bytes, but data_offsets [0, 20] span 20 bytes"},
      {"begin_after_end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, MP_ERR_FORMAT,
       "end before they begin"},
      {"offsets_three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, MP_ERR_FORMAT,
       "two integers"},
      {"offsets_negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, MP_ERR_FORMAT,
       "data_offsets[0] is not a non-negative integer"},
      {"offsets_out_of_range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 8, MP_ERR_FORMAT,
       "run past the end of the data block (8 bytes)"},
      {"offsets_huge",
       "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[9223372036854775800,9223372036854775808]}}", 8,
       MP_ERR_FORMAT, "data_offsets[1]"},
      {"overlap",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
       "\"data_offsets\":[4,12]}}",
       12, MP_ERR_FORMAT, "'a' [0, 8] and 'b' [4, 12] overlap"},
      {"same_span",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"I32\",\"shape\":[2],"
       "\"data_offsets\":[0,8]}}",
       8, MP_ERR_FORMAT, "overlap"},
      {"gap",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
       "\"data_offsets\":[8,12]}}",
       12, MP_ERR_FORMAT, "bytes [4, 8) of the data block belong to no tensor (gap between 'a' and 'b')"},
      {"leading_gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, MP_ERR_FORMAT,
       "bytes [0, 4) of the data block belong to no tensor"},
      {"trailing_bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, MP_ERR_FORMAT,
       "4 trailing bytes"},
      {"no_tensors_but_data", "{}", 16, MP_ERR_FORMAT, "16 trailing bytes"},
      {"dup_name", "{" T1 "," T1 "}", 8, MP_ERR_FORMAT, "tensor 'a' appears twice"},
      {"nul_name", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, MP_ERR_FORMAT,
       "NUL byte"},
      {"meta_not_object", "{\"__metadata__\":[1]," T1 "}", 8, MP_ERR_FORMAT, "__metadata__ is a JSON array"},
      {"meta_value_number", "{\"__metadata__\":{\"format\":1}," T1 "}", 8, MP_ERR_FORMAT,
       "__metadata__['format'] is a JSON number; metadata values must be strings"},
      {"meta_dup_key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," T1 "}", 8, MP_ERR_FORMAT,
       "__metadata__ key 'k' appears twice"},
      {"meta_twice", "{\"__metadata__\":{},\"__metadata__\":{}," T1 "}", 8, MP_ERR_FORMAT,
       "__metadata__ appears twice"},
      {"meta_nul", "{\"__metadata__\":{\"k\":\"a\\u0000\"}," T1 "}", 8, MP_ERR_FORMAT, "NUL byte"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    n = make_file(buf, sizeof buf, cases[i].hdr, cases[i].data_len, U, 0);
    REQUIRE(n);
    expect_reject(cases[i].label, buf, n, cases[i].want, cases[i].needle);
  }
  /* length field lies */
  n = make_file(buf, sizeof buf, "{" T1 "}", 8, 0, 0);
  uint64_t real = n - 8 - 8;
  make_file(buf, sizeof buf, "{" T1 "}", 8, real + 9, 1); /* one byte past the end */
  expect_reject("len_past_end", buf, n, MP_ERR_FORMAT, "runs past the end of the file");
  make_file(buf, sizeof buf, "{" T1 "}", 8, (uint64_t)1 << 40, 1);
  expect_reject("len_huge", buf, n, MP_ERR_FORMAT, "exceeds the 100000000-byte limit");
  make_file(buf, sizeof buf, "{" T1 "}", 8, UINT64_MAX, 1);
  expect_reject("len_max", buf, n, MP_ERR_FORMAT, "exceeds");
  make_file(buf, sizeof buf, "{" T1 "}", 8, real - 3, 1); /* header cut short: bad JSON */
  expect_reject("len_short", buf, n, MP_ERR_FORMAT, "invalid JSON");
  make_file(buf, sizeof buf, "{" T1 "}", 8, real + 4, 1); /* header swallows data bytes */
  expect_reject("len_long", buf, n, MP_ERR_FORMAT, "invalid JSON");
  make_file(buf, sizeof buf, "{}", 0, 0, 1);
  expect_reject("len_zero", buf, 8, MP_ERR_FORMAT, "invalid JSON");
  expect_reject("empty_file", buf, 0, MP_ERR_FORMAT, "file is 0 bytes, too short");
  expect_reject("seven_bytes", buf, 7, MP_ERR_FORMAT, "file is 7 bytes, too short");

  /* a header made of millions of tiny values is refused before any DOM is built */
  {
    mp_sb h;
    mp_sb_init(&h);
    mp_sb_puts(&h, "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,0],\"shape\":[");
    for (int i = 0; i < 2100000; i++)
      mp_sb_puts(&h, "0,");
    mp_sb_puts(&h, "0]}}");
    REQUIRE(!h.oom);
    uint8_t *big = malloc(h.len + 8);
    for (int i = 0; i < 8; i++)
      big[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    memcpy(big + 8, h.buf, h.len);
    expect_reject("many_values", big, h.len + 8, MP_ERR_UNSUPPORTED, "more than 2000000 JSON values");
    free(big);
    mp_sb_free(&h);
  }
  /* valid corner cases the reference accepts */
  const char *ok[] = {"{}",
                      "  {}  ",
                      "{\"__metadata__\":null}",
                      "{\"__metadata__\":{}}",
                      "{\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                      "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},\"a\":{\"dtype\":\"U8\","
                      "\"shape\":[1,2],\"data_offsets\":[0,2]},\"c\":{\"dtype\":\"BOOL\",\"shape\":[0,5],"
                      "\"data_offsets\":[4,4]}}"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    n = make_file(buf, sizeof buf, ok[i], i == 5 ? 4 : 0, 0, 0);
    mp_safetensors *st = NULL;
    CHECKF(mp_safetensors_open_memory(buf, n, "ok", &st) == MP_OK, "%s: %s", ok[i], mp_last_error());
    if (i == 5 && st) {
      CHECK(mp_safetensors_count(st) == 3);
      CHECK_STREQ(mp_safetensors_at(st, 0)->name, "a"); /* sorted by offset */
      CHECK_STREQ(mp_safetensors_at(st, 1)->name, "b");
      CHECK_STREQ(mp_safetensors_at(st, 2)->name, "c");
      CHECK(mp_safetensors_find(st, "c")->nbytes == 0);
    }
    mp_safetensors_close(st);
  }
}

/* Every truncation of a valid file, and random corruption: refused (or accepted when still
 * valid), never a crash, hang or leak. */
static void test_truncation_and_corruption(void) {
  mp_st_writer *w;
  CHECK_OK(mp_st_writer_create(&w));
  float f[6] = {1, 2, 3, 4, 5, 6};
  uint16_t h[3] = {1, 2, 3};
  int64_t s23[2] = {2, 3}, s3[1] = {3};
  CHECK_OK(mp_st_writer_add(w, "weight", MP_F32, 2, s23, f, sizeof f));
  CHECK_OK(mp_st_writer_add(w, "bias", MP_F16, 1, s3, h, sizeof h));
  CHECK_OK(mp_st_writer_set_metadata(w, "format", "pt"));
  char *path = tmp_path("base.safetensors");
  CHECK_OK(mp_st_writer_finish(w, path));
  mp_st_writer_free(w);
  char *buf;
  size_t len;
  CHECK_OK(mp_read_file(path, &buf, &len, 1 << 20));
  REQUIRE(buf);
  int rejected = 0;
  for (size_t cut = 0; cut < len; cut++) {
    mp_safetensors *st = NULL;
    char what[64];
    snprintf(what, sizeof what, "cut%zu.safetensors", cut);
    mp_status s = mp_safetensors_open_memory(buf, cut, what, &st);
    CHECKF(s == MP_ERR_FORMAT && strstr(mp_last_error(), what), "cut at %zu: %d %s", cut, (int)s, mp_last_error());
    rejected += s == MP_ERR_FORMAT;
    mp_safetensors_close(st);
  }
  CHECK(rejected == (int)len);
  /* a few truncations on disk, through the path API */
  for (size_t cut = 0; cut < len; cut += len / 5) {
    char name[64];
    snprintf(name, sizeof name, "trunc%zu.safetensors", cut);
    char *p = tmp_path(name);
    CHECK_OK(mp_write_file_atomic(p, buf, cut));
    mp_safetensors *st = NULL;
    CHECK(mp_safetensors_open(p, &st) == MP_ERR_FORMAT);
    CHECK(strstr(mp_last_error(), p) != NULL);
    free(p);
  }
  /* random corruption */
  char *copy = malloc(len);
  for (int it = 0; it < 3000; it++) {
    memcpy(copy, buf, len);
    int flips = 1 + rnd8() % 4;
    for (int k = 0; k < flips; k++)
      copy[(rnd8() | (size_t)rnd8() << 8) % len] = (char)rnd8();
    mp_safetensors *st = NULL;
    mp_status s = mp_safetensors_open_memory(copy, len, "fuzz", &st);
    if (s == MP_OK) {
      for (size_t i = 0; i < mp_safetensors_count(st); i++) {
        const mp_tensor *t = mp_safetensors_at(st, i);
        CHECK(t->nbytes == (size_t)mp_tensor_numel(t) * mp_dtype_size(t->dtype));
        CHECK((const char *)t->data >= copy && (const char *)t->data + t->nbytes <= copy + len);
      }
    } else {
      CHECK(strstr(mp_last_error(), "fuzz") != NULL);
    }
    mp_safetensors_close(st);
  }
  free(copy);
  free(buf);
  free(path);
}

/* ---- weights table over folders and shard indexes ---- */

static void write_small(const char *path, const char *name, float v) {
  mp_st_writer *w;
  CHECK_OK(mp_st_writer_create(&w));
  int64_t s1[1] = {1};
  CHECK_OK(mp_st_writer_add_copy(w, name, MP_F32, 1, s1, &v, 4));
  CHECK_OK(mp_st_writer_finish(w, path));
  mp_st_writer_free(w);
}

static void put_file(const char *dir, const char *name, const char *text) {
  char *p = mp_path_join(dir, name);
  CHECK_OK(mp_write_file_atomic(p, text, strlen(text)));
  free(p);
}

static void expect_weights_error(const char *path, mp_status want, const char *needle) {
  mp_weights *w = (mp_weights *)1;
  mp_status s = mp_weights_open(path, &w);
  CHECKF(s == want, "%s: status %d, want %d: %s", path, (int)s, (int)want, mp_last_error());
  CHECK(w == NULL);
  CHECKF(strstr(mp_last_error(), needle) != NULL, "%s: message lacks '%s': %s", path, needle, mp_last_error());
}

static void test_weights_folders(void) {
  char *dir = tmp_path("wdir");
  CHECK_OK(mp_mkdirs(dir));
  expect_weights_error(dir, MP_ERR_NOT_FOUND, "no weights found");
  char *missing = tmp_path("does-not-exist");
  expect_weights_error(missing, MP_ERR_NOT_FOUND, "does-not-exist");
  free(missing);

  /* a two-shard checkpoint written by hand, then broken in different ways */
  char *s1 = mp_path_join(dir, "model-00001-of-00002.safetensors");
  char *s2 = mp_path_join(dir, "model-00002-of-00002.safetensors");
  write_small(s1, "a", 1.0f);
  write_small(s2, "b", 2.0f);
  char *idx = mp_path_join(dir, "model.safetensors.index.json");
  const char *good = "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                     "\"b\":\"model-00002-of-00002.safetensors\"}}";
  put_file(dir, "model.safetensors.index.json", good);
  mp_weights *w = NULL;
  CHECK_OK(mp_weights_open(dir, &w));
  if (w) {
    CHECK(mp_weights_get_format(w) == MP_WEIGHTS_SAFETENSORS_SHARDED);
    CHECK(mp_weights_count(w) == 2 && mp_weights_file_count(w) == 2);
    const mp_tensor *b = mp_weights_find(w, "b");
    float v = 0;
    if (b) memcpy(&v, b->data, 4);
    CHECK(v == 2.0f);
  }
  mp_weights_close(w);
  /* opening the index file directly works too */
  CHECK_OK(mp_weights_open(idx, &w));
  mp_weights_close(w);

  put_file(dir, "model.safetensors.index.json",
           "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00003-of-00002.safetensors\"}}");
  expect_weights_error(dir, MP_ERR_NOT_FOUND, "model-00003-of-00002.safetensors listed in the index is missing");
  put_file(dir, "model.safetensors.index.json",
           "{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");
  expect_weights_error(
      dir, MP_ERR_FORMAT,
      "weight_map puts tensor 'a' in model-00002-of-00002.safetensors, but that shard does not contain it");
  put_file(dir, "model.safetensors.index.json",
           "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\","
           "\"c\":\"model-00002-of-00002.safetensors\"}}");
  expect_weights_error(dir, MP_ERR_FORMAT, "tensor 'c'");
  put_file(dir, "model.safetensors.index.json",
           "{\"metadata\":{\"total_size\":1000000},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
           "\"b\":\"model-00002-of-00002.safetensors\"}}");
  expect_weights_error(dir, MP_ERR_FORMAT, "total_size is 1000000 bytes");
  put_file(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"../evil.safetensors\"}}");
  expect_weights_error(dir, MP_ERR_SECURITY, "not a file in the index's folder");
  put_file(dir, "model.safetensors.index.json", "{\"weight_map\":{}}");
  expect_weights_error(dir, MP_ERR_FORMAT, "weight_map");
  put_file(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"x.safetensors\",\"a\":\"x.safetensors\"}}");
  expect_weights_error(dir, MP_ERR_FORMAT, "appears twice in weight_map");
  put_file(dir, "model.safetensors.index.json", "{\"weight_map\": [");
  expect_weights_error(dir, MP_ERR_FORMAT, "invalid JSON");
  /* a tensor in two shards */
  write_small(s2, "a", 3.0f);
  put_file(dir, "model.safetensors.index.json",
           "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");
  expect_weights_error(dir, MP_ERR_FORMAT, "tensor 'a' is also in");
  /* a broken shard: its own message comes through */
  put_file(dir, "model-00002-of-00002.safetensors", "garbage!garbage!");
  expect_weights_error(dir, MP_ERR_FORMAT, "model-00002-of-00002.safetensors: header length");

  /* preference: model.safetensors wins over the index and over pytorch_model.bin */
  char *single = mp_path_join(dir, "model.safetensors");
  write_small(single, "solo", 4.0f);
  put_file(dir, "pytorch_model.bin", "not a real checkpoint");
  CHECK_OK(mp_weights_open(dir, &w));
  if (w) {
    CHECK(mp_weights_get_format(w) == MP_WEIGHTS_SAFETENSORS);
    CHECK(mp_weights_find(w, "solo") != NULL);
    CHECK_STREQ(mp_weights_file(w, 0), single);
  }
  mp_weights_close(w);
  /* only a pytorch_model.bin: handed to the torch reader, whose error names the file */
  char *tdir = tmp_path("tdir");
  CHECK_OK(mp_mkdirs(tdir));
  put_file(tdir, "pytorch_model.bin", "not a real checkpoint");
  mp_status s = mp_weights_open(tdir, &w);
  CHECK(s != MP_OK && w == NULL);
  CHECKF(strstr(mp_last_error(), "pytorch_model.bin") != NULL, "%s", mp_last_error());
  free(tdir);
  free(single);
  free(idx);
  free(s1);
  free(s2);
  free(dir);
}

int main(void) {
  RUN(test_roundtrip_all_dtypes);
  RUN(test_empty_and_memory);
  RUN(test_many_tensors);
  RUN(test_sharding);
  RUN(test_rewrite_cleans_stale);
  RUN(test_malformed_headers);
  RUN(test_truncation_and_corruption);
  RUN(test_weights_folders);
  return mp_test_done();
}
