/* Upload and model-card units (issue 14), no server needed: base64 and git blob ids, the NDJSON
 * commit builder, the parsers of preupload and LFS batch answers (untrusted input), the error
 * mapping of 401/403/409/413, the folder scan, and the card writer / updater (the front matter
 * parses as YAML with the Hub's fields; evaluations replace the model-index and the section). */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/sha1.h"
#include "core/yaml.h"
#include "hub/card.h"
#include "hub/upload.h"
#include "testlib.h"

static void test_base64_and_oids(void) {
  const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_base64(&sb, (const unsigned char *)in[i], strlen(in[i]));
    CHECK_STREQ(sb.buf ? sb.buf : "", want[i]);
    mp_sb_free(&sb);
  }
  char oid[41];
  mp_git_blob_oid("", 0, oid); /* git hash-object /dev/null */
  CHECK_STREQ(oid, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  mp_git_blob_oid("hello\n", 6, oid);
  CHECK_STREQ(oid, "ce013625030ba8dba906f756967f9e9ca394464a");
  CHECK(mp_up_local_lfs_rule("model.safetensors", 10) && mp_up_local_lfs_rule("a/b.bin", 1));
  CHECK(!mp_up_local_lfs_rule("config.json", 100) && mp_up_local_lfs_rule("big.json", 20 * 1000 * 1000));
}

static void test_commit_ndjson(void) {
  const unsigned char data[] = "{\"a\": 1}";
  mp_up_commit_op ops[2] = {{"config.json", 0, data, sizeof data - 1, NULL, 0},
                            {"dir/model \"x\".safetensors", 1, NULL, 0,
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1234}};
  mp_sb sb;
  mp_sb_init(&sb);
  mp_up_commit_ndjson(&sb, "Upload \"q4\"\n", NULL, "0123456789012345678901234567890123456789", ops, 2);
  /* three lines, each one JSON document */
  char *save = NULL, *text = strdup(sb.buf);
  int n = 0;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_json *j = NULL;
    CHECK_OK(mp_json_parse(line, strlen(line), "line", &a, &j));
    if (j) {
      const char *key = mp_json_get_str(j, "key", "");
      const mp_json *v = mp_json_get(j, "value");
      if (n == 0) {
        CHECK_STREQ(key, "header");
        CHECK_STREQ(mp_json_get_str(v, "summary", ""), "Upload \"q4\"\n");
        CHECK_STREQ(mp_json_get_str(v, "parentCommit", ""), "0123456789012345678901234567890123456789");
        CHECK_STREQ(mp_json_get_str(v, "description", "x"), "");
      } else if (n == 1) {
        CHECK_STREQ(key, "file");
        CHECK_STREQ(mp_json_get_str(v, "content", ""), "eyJhIjogMX0=");
        CHECK_STREQ(mp_json_get_str(v, "encoding", ""), "base64");
        CHECK_STREQ(mp_json_get_str(v, "path", ""), "config.json");
      } else {
        CHECK_STREQ(key, "lfsFile");
        CHECK_STREQ(mp_json_get_str(v, "path", ""), "dir/model \"x\".safetensors");
        CHECK_STREQ(mp_json_get_str(v, "algo", ""), "sha256");
        CHECK(mp_json_get_int(v, "size", 0) == 1234);
      }
    }
    mp_arena_free(&a);
  }
  CHECK(n == 3);
  free(text);
  mp_sb_clear(&sb);
  mp_up_commit_ndjson(&sb, "m", "d", NULL, NULL, 0); /* no parent: no parentCommit key */
  CHECK(!strstr(sb.buf, "parentCommit") && strstr(sb.buf, "\"description\": \"d\""));
  mp_sb_free(&sb);
}

static void test_preupload_parser(void) {
  mp_up_file f[2];
  memset(f, 0, sizeof f);
  f[0].path = "config.json";
  f[1].path = "model.safetensors";
  const char *ok = "{\"files\": [{\"path\": \"model.safetensors\", \"uploadMode\": \"lfs\", \"shouldIgnore\": false, "
                   "\"oid\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}, {\"path\": "
                   "\"config.json\", \"uploadMode\": \"regular\", \"shouldIgnore\": true}]}";
  CHECK_OK(mp_up_parse_preupload(ok, strlen(ok), "u", f, 2));
  CHECK(f[1].lfs && !f[0].lfs && f[0].ignored && !f[1].ignored && strlen(f[1].remote_oid) == 64 && !f[0].remote_oid[0]);
  const char *bad[] = {
      "",
      "[]",
      "{\"files\": {}}",
      "{\"files\": [{\"path\": \"config.json\", \"uploadMode\": \"regular\"}]}", /* one missing */
      "{\"files\": [{\"path\": \"other\", \"uploadMode\": \"regular\"}]}",       /* not asked */
      "{\"files\": [{\"path\": \"config.json\", \"uploadMode\": \"xet\"}, {\"path\": \"model.safetensors\", "
      "\"uploadMode\": \"lfs\"}]}", /* unknown mode */
      "{\"files\": [{\"path\": \"config.json\", \"uploadMode\": \"lfs\"}, {\"path\": \"config.json\", "
      "\"uploadMode\": \"lfs\"}]}", /* twice */
      "{\"files\": [{\"uploadMode\": \"lfs\"}]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mp_status s = mp_up_parse_preupload(bad[i], strlen(bad[i]), "http://x/preupload", f, 2);
    CHECKF(s != MP_OK, "bad answer %zu accepted", i);
    CHECK(strstr(mp_last_error(), "http://x/preupload") != NULL);
  }
  /* an oid that is not hex is ignored (the file counts as changed) */
  const char *odd = "{\"files\": [{\"path\": \"config.json\", \"uploadMode\": \"regular\", \"oid\": \"../x\"}, "
                    "{\"path\": \"model.safetensors\", \"uploadMode\": \"lfs\", \"oid\": 5}]}";
  CHECK_OK(mp_up_parse_preupload(odd, strlen(odd), "u", f, 2));
  CHECK(!f[0].remote_oid[0] && !f[1].remote_oid[0]);
}

#define OID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define OID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_batch_parser(void) {
  mp_up_action a[2];
  memset(a, 0, sizeof a);
  a[0].oid = OID_A, a[0].size = 10;
  a[1].oid = OID_B, a[1].size = 250;
  const char *ok =
      "{\"transfer\": \"multipart\", \"objects\": [{\"oid\": \"" OID_A "\", \"size\": 10}, {\"oid\": \"" OID_B
      "\", \"size\": 250, \"actions\": {\"upload\": {\"href\": \"https://h/complete\", \"header\": "
      "{\"chunk_size\": \"100\", \"00002\": \"https://s/p2\", \"00001\": \"https://s/p1\", \"00003\": "
      "\"https://s/p3\"}}, \"verify\": {\"href\": \"https://h/verify\"}}}]}";
  CHECK_OK(mp_up_parse_batch(ok, strlen(ok), "u", a, 2));
  CHECK(!a[0].upload && a[1].upload && a[1].chunk_size == 100 && a[1].n_parts == 3);
  if (a[1].n_parts == 3) {
    CHECK_STREQ(a[1].parts[0], "https://s/p1");
    CHECK_STREQ(a[1].parts[2], "https://s/p3");
  }
  CHECK(a[1].verify && !strcmp(a[1].verify, "https://h/verify"));
  mp_up_actions_free(a, 2);
  const char *bad[] = {
      "{}",
      "{\"objects\": [{\"oid\": \"" OID_A "\", \"size\": 10}]}", /* B missing */
      "{\"objects\": [{\"oid\": \"" OID_A "\", \"size\": 11}, {\"oid\": \"" OID_B "\", \"size\": 250}]}", /* size */
      "{\"objects\": [{\"oid\": \"" OID_A "\", \"size\": 10, \"error\": {\"code\": 422, \"message\": \"no\"}}, "
      "{\"oid\": \"" OID_B "\", \"size\": 250}]}",
      "{\"objects\": [{\"oid\": \"cc\", \"size\": 10}]}",
      "{\"transfer\": \"xet\", \"objects\": []}",
      /* two parts for 250 bytes of 100 */
      "{\"objects\": [{\"oid\": \"" OID_A "\", \"size\": 10}, {\"oid\": \"" OID_B "\", \"size\": 250, \"actions\": "
      "{\"upload\": {\"href\": \"https://h/c\", \"header\": {\"chunk_size\": 100, \"1\": \"https://s/1\", \"2\": "
      "\"https://s/2\"}}}}]}",
      /* a part outside the range */
      "{\"objects\": [{\"oid\": \"" OID_A "\", \"size\": 10}, {\"oid\": \"" OID_B "\", \"size\": 250, \"actions\": "
      "{\"upload\": {\"href\": \"https://h/c\", \"header\": {\"chunk_size\": 100, \"1\": \"https://s/1\", \"2\": "
      "\"https://s/2\", \"9\": \"https://s/9\"}}}}]}",
      /* a non-http href */
      "{\"objects\": [{\"oid\": \"" OID_A "\", \"size\": 10}, {\"oid\": \"" OID_B "\", \"size\": 250, \"actions\": "
      "{\"upload\": {\"href\": \"file:///etc/passwd\"}}}]}",
      /* zero chunk size */
      "{\"objects\": [{\"oid\": \"" OID_A "\", \"size\": 10}, {\"oid\": \"" OID_B "\", \"size\": 250, \"actions\": "
      "{\"upload\": {\"href\": \"https://h/c\", \"header\": {\"chunk_size\": \"0\"}}}}]}",
      /* a chunk size near INT64_MAX (one part, none given; found by fuzz_hub_answers: no overflow) */
      "{\"objects\": [{\"oid\": \"" OID_A "\", \"size\": 10}, {\"oid\": \"" OID_B "\", \"size\": 250, \"actions\": "
      "{\"upload\": {\"href\": \"https://h/c\", \"header\": {\"chunk_size\": 9223372036854775807}}}}]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    for (int k = 0; k < 2; k++)
      a[k].answered = a[k].upload = 0, a[k].chunk_size = 0;
    mp_status s = mp_up_parse_batch(bad[i], strlen(bad[i]), "http://x/batch", a, 2);
    CHECKF(s != MP_OK, "bad batch answer %zu accepted", i);
    CHECK(strstr(mp_last_error(), "http://x/batch") != NULL);
    mp_up_actions_free(a, 2);
  }
}

static void test_error_mapping(void) {
  mp_status s =
      mp_up_http_error(401, NULL, "Invalid credentials", "http://h/api/repos/create", "creating the repo", "org/x", 1);
  CHECK(s == MP_ERR_SECURITY && strstr(mp_last_error(), "401") && strstr(mp_last_error(), "HF_TOKEN") &&
        strstr(mp_last_error(), "invalid") && strstr(mp_last_error(), "http://h/api/repos/create"));
  s = mp_up_http_error(401, NULL, NULL, "u", "w", "org/x", 0);
  CHECK(strstr(mp_last_error(), "missing") != NULL);
  s = mp_up_http_error(403, "Forbidden", "read token", "u", "committing", "org/x", 1);
  CHECK(s == MP_ERR_SECURITY && strstr(mp_last_error(), "write") && strstr(mp_last_error(), "org/x"));
  s = mp_up_http_error(409, "Conflict", "moved", "u", "committing", "org/x", 1);
  CHECK(strstr(mp_last_error(), "409") && strstr(mp_last_error(), "Run the upload again") &&
        strstr(mp_last_error(), "nothing was committed"));
  s = mp_up_http_error(413, NULL, NULL, "u", "committing", "org/x", 1);
  CHECK(s == MP_ERR_UNSUPPORTED && strstr(mp_last_error(), "413") && strstr(mp_last_error(), "10 MB"));
  s = mp_up_http_error(503, NULL, "busy", "u", "LFS batch", "org/x", 1);
  CHECK(s == MP_ERR_IO && strstr(mp_last_error(), "HTTP 503"));
}

static void test_scan(void) {
  const char *tmp = mp_test_tmpdir();
  char *d = mp_path_join(tmp, "scan");
  mp_test_write(d, "b.txt", "hello\n");
  mp_test_write(d, "a/x.json", "{}");
  mp_test_write(d, ".git/HEAD", "ref");
  mp_test_write(d, ".cache/huggingface/download/x.metadata", "m");
  mp_test_write(d, "a/.README.md.tmp-Ab12Cd", "half a card");
  mp_up_file *f = NULL;
  size_t n = 0;
  CHECK_OK(mp_up_scan_folder(d, &f, &n));
  CHECK(n == 2);
  if (n == 2) {
    CHECK_STREQ(f[0].path, "a/x.json");
    CHECK_STREQ(f[1].path, "b.txt");
    CHECK_STREQ(f[1].git_oid, "ce013625030ba8dba906f756967f9e9ca394464a");
    CHECK_STREQ(f[1].sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    CHECK(f[1].size == 6 && f[1].sample_len == 6);
  }
  mp_up_files_free(f, n);
  char *e = mp_path_join(tmp, "scan-empty");
  mp_mkdirs(e);
  CHECK(mp_up_scan_folder(e, &f, &n) != MP_OK);
  free(e);
  free(d);
}

static void check_front_matter(const char *card, int want_index) {
  REQUIRE(!strncmp(card, "---\n", 4));
  const char *end = strstr(card + 3, "\n---\n");
  REQUIRE(end);
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *fm = NULL;
  CHECK_OK(mp_yaml_parse(card + 4, (size_t)(end - card - 3), "card", &a, &fm));
  if (fm) {
    CHECK_STREQ(mp_json_get_str(fm, "library_name", ""), "mlx");
    CHECK_STREQ(mp_json_get_str(fm, "base_model", ""), "org/base-model");
    CHECK_STREQ(mp_json_get_str(fm, "base_model_relation", ""), "quantized");
    CHECK_STREQ(mp_json_get_str(fm, "license", ""), "apache-2.0");
    CHECK_STREQ(mp_json_get_str(fm, "pipeline_tag", ""), "sentence-similarity");
    const mp_json *tags = mp_json_get(fm, "tags");
    CHECK(tags && tags->type == MP_JSON_ARRAY && tags->len >= 4);
    const mp_json *mi = mp_json_get(fm, "model-index");
    CHECK(want_index ? (mi && mi->type == MP_JSON_ARRAY && mi->len == 1) : !mi);
    if (want_index && mi && mi->len) {
      const mp_json *res = mp_json_get(mi->items[0], "results");
      CHECK(res && res->type == MP_JSON_ARRAY && (int)res->len == want_index);
      const mp_json *m0 = res && res->len ? mp_json_get(res->items[0], "metrics") : NULL;
      CHECK(m0 && m0->type == MP_JSON_ARRAY && m0->len >= 1);
    }
  }
  mp_arena_free(&a);
}

static const char *k_cmp =
    "{\"model\": \"m\", \"dataset\": \"%s\", \"bits\": 4, \"main_metric\": \"spearman\", \"converted\": {\"task\": "
    "\"semantic-similarity\", \"n_examples\": 30, \"spearman\": 0.88, \"pearson\": 0.9, \"spearman_ci95\": [0.8, "
    "0.95], "
    "\"qpm\": 5000, \"size_mb\": 12.3, \"cpu\": \"Test CPU\", \"isa\": \"scalar\", \"threads\": 1, \"metric_compute\": "
    "\"faithful\", \"perf_compute\": \"fast\"}, \"original\": {\"spearman\": 0.89, \"qpm\": 3000, \"size_mb\": 86.7}, "
    "\"comparison\": {\"accuracy_drop\": 0.01, \"speedup\": 1.6, \"agreement\": null}, \"quality_gates\": {\"passed\": "
    "%s, \"gates\": [{\"name\": \"spearman_drop\", \"value\": 0.01, \"rule\": \"drop <= 0.001\", \"passed\": %s}]}}";

static void test_card(void) {
  mp_card_info ci;
  memset(&ci, 0, sizeof ci);
  ci.title = "m-q4";
  ci.base_model = "org/base-model";
  ci.source = "org/base-model";
  ci.source_commit = "0123456789012345678901234567890123456789";
  ci.license = "apache-2.0";
  ci.pipeline_tag = "sentence-similarity";
  ci.sentence_transformers = 1;
  ci.quantized = 1, ci.bits = 4, ci.group_size = 64, ci.dtype = "float16";
  ci.command = "mlxport convert --hf-path org/base-model -q";
  mp_sb sb;
  mp_sb_init(&sb);
  mp_card_render(&sb, &ci);
  check_front_matter(sb.buf, 0);
  CHECK(strstr(sb.buf, MP_CARD_EVAL_START) && strstr(sb.buf, "Not evaluated yet") && strstr(sb.buf, ci.command));
  const char *tmp = mp_test_tmpdir();
  char *d = mp_path_join(tmp, "card/m-q4");
  mp_test_write(d, "README.md", sb.buf);
  mp_sb_free(&sb);
  /* two evaluations, then the first again (replaced, not duplicated) */
  const char *sets[3][2] = {{"stsb", "true"}, {"sick", "false"}, {"stsb", "true"}};
  for (int k = 0; k < 3; k++) {
    char doc[2000];
    snprintf(doc, sizeof doc, k_cmp, sets[k][0], sets[k][1], sets[k][1]);
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_json *j = NULL;
    CHECK_OK(mp_json_parse(doc, strlen(doc), "doc", &a, &j));
    int upd = 0;
    CHECK_OK(mp_card_add_evaluation(d, j, k == 0 ? "mlxport eval --model m-q4 --dataset stsb" : NULL, &upd));
    CHECK(upd == 1);
    mp_arena_free(&a);
  }
  CHECK(mp_card_gates_passed(d) == 0);
  CHECK_OK(mp_card_set_note(d, "Published although a gate failed."));
  char *rp = mp_path_join(d, "README.md"), *card = NULL;
  CHECK_OK(mp_read_file(rp, &card, NULL, 1 << 20));
  if (card) {
    check_front_matter(card, 2);
    CHECK(!strstr(card, "Not evaluated yet"));
    CHECK(strstr(card, "| stsb | 30 | spearman | 0.8900 | 0.8800 [0.8000, 0.9500] | +0.0100 |") != NULL);
    CHECK(strstr(card, "**FAIL**") && strstr(card, "A quality gate failed") && strstr(card, "Published although"));
    CHECK(strstr(card, "mlxport eval --model m-q4 --dataset stsb") != NULL); /* kept when re-recorded */
    const char *first = strstr(card, MP_CARD_EVAL_START);
    CHECK(first && !strstr(first + 1, MP_CARD_EVAL_START)); /* one section */
    CHECK(strstr(card, "## Use with MLX") && strstr(card, "Test CPU"));
  }
  free(card);
  free(rp);
  /* a folder without an mlxport card is left alone */
  char *other = mp_path_join(tmp, "card/other");
  mp_test_write(other, "README.md", "# somebody's card\n");
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j = NULL;
  char doc[2000];
  snprintf(doc, sizeof doc, k_cmp, "stsb", "true", "true");
  CHECK_OK(mp_json_parse(doc, strlen(doc), "doc", &a, &j));
  int upd = 1;
  CHECK_OK(mp_card_add_evaluation(other, j, NULL, &upd));
  CHECK(upd == 0);
  mp_arena_free(&a);
  /* the rebuild refuses text that is not an mlxport card */
  mp_sb out;
  mp_sb_init(&out);
  CHECK(mp_card_rebuild("no front matter", 15, NULL, "t", &out) != MP_OK);
  CHECK(mp_card_rebuild("---\na: 1\n---\nbody\n", 18, NULL, "t", &out) != MP_OK);
  mp_sb_free(&out);
  free(other);
  free(d);
}

int main(void) {
  RUN(test_base64_and_oids);
  RUN(test_commit_ndjson);
  RUN(test_preupload_parser);
  RUN(test_batch_parser);
  RUN(test_error_mapping);
  RUN(test_scan);
  RUN(test_card);
  return mp_test_done();
}
