/* Hub client units: repo id / path / revision rules, cache folder names, cached snapshot lookup,
 * settings read from the environment as huggingface_hub reads them, and the offline and
 * unreachable-Hub answers of mp_hub_download (no server needed: tests/py/test_hub.py has those). */
#include <stdlib.h>

#include "core/fs.h"
#include "hub/hub.h"
#include "testlib.h"

static void clear_env(void) {
  const char *vars[] = {"HF_ENDPOINT",
                        "HF_TOKEN",
                        "HUGGING_FACE_HUB_TOKEN",
                        "HF_TOKEN_PATH",
                        "HF_HOME",
                        "HF_HUB_CACHE",
                        "HUGGINGFACE_HUB_CACHE",
                        "HF_HUB_OFFLINE",
                        "TRANSFORMERS_OFFLINE",
                        "HF_HUB_ETAG_TIMEOUT",
                        "HF_HUB_DOWNLOAD_TIMEOUT",
                        "MP_HUB_MAX_ATTEMPTS",
                        "XDG_CACHE_HOME"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
    unsetenv(vars[i]);
}

static void test_names(void) {
  const char *ok_ids[] = {"org/name", "name", "Org-1/na_me.v2", "FacebookAI/roberta-large-mnli",
                          "MoritzLaurer/ModernBERT-large-zeroshot-v2.0"};
  const char *bad_ids[] = {"",       "a/b/c",     "../x", "org/..", "org/.hidden",
                           "-org/x", "org/na me", "org/", "/name",  "org/a..b"};
  for (size_t i = 0; i < sizeof ok_ids / sizeof *ok_ids; i++)
    CHECKF(mp_hub_valid_repo_id(ok_ids[i]), "%s", ok_ids[i]);
  for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++)
    CHECKF(!mp_hub_valid_repo_id(bad_ids[i]), "%s", bad_ids[i]);
  CHECK(!mp_hub_valid_repo_id(NULL));

  const char *ok_paths[] = {"config.json", "1_Pooling/config.json", "a/b/c.d", "..a", "a..", ".gitattributes"};
  const char *bad_paths[] = {"", "/etc/passwd", "../x", "a/../b", "a/..", "a//b", "./a", "a/.", "a\\b", "a\nb", "a/"};
  for (size_t i = 0; i < sizeof ok_paths / sizeof *ok_paths; i++)
    CHECKF(mp_hub_safe_repo_path(ok_paths[i]), "%s", ok_paths[i]);
  for (size_t i = 0; i < sizeof bad_paths / sizeof *bad_paths; i++)
    CHECKF(!mp_hub_safe_repo_path(bad_paths[i]), "%s", bad_paths[i]);

  CHECK(mp_hub_valid_revision("main") && mp_hub_valid_revision("v1.0") && mp_hub_valid_revision("refs/pr/1"));
  CHECK(!mp_hub_valid_revision("") && !mp_hub_valid_revision("../main") && !mp_hub_valid_revision("/main"));

  char *f = mp_hub_repo_folder("dataset", "nyu-mll/glue");
  CHECK_STREQ(f, "datasets--nyu-mll--glue");
  free(f);
  f = mp_hub_repo_folder(NULL, "org/name");
  CHECK_STREQ(f, "models--org--name");
  free(f);
  f = mp_hub_repo_folder("model", "solo");
  CHECK_STREQ(f, "models--solo");
  free(f);
}

static void test_cached_snapshot(void) {
  const char *tmp = mp_test_tmpdir();
  char *st = mp_path_join(tmp, "cs/models--org--name");
  mp_test_write(st, "refs/main", "1111111111111111111111111111111111111111\n");
  mp_test_write(st, "snapshots/1111111111111111111111111111111111111111/config.json", "{}");
  mp_test_write(st, "snapshots/2222222222222222222222222222222222222222/config.json", "{}");
  mp_test_write(st, "refs/bad", "../../../etc");
  char *commit = NULL;
  char *snap = mp_hub_cached_snapshot(st, "main", &commit);
  CHECK(snap && strstr(snap, "snapshots/1111111111111111111111111111111111111111"));
  CHECK(commit && !strcmp(commit, "1111111111111111111111111111111111111111"));
  free(snap);
  free(commit);
  snap = mp_hub_cached_snapshot(st, "2222222222222222222222222222222222222222", &commit);
  CHECK(snap != NULL);
  free(snap);
  free(commit);
  CHECK(mp_hub_cached_snapshot(st, "v9", &commit) == NULL && commit == NULL);
  CHECK(mp_hub_cached_snapshot(st, "bad", &commit) == NULL);
  CHECK(mp_hub_cached_snapshot(st, "../x", &commit) == NULL);
  free(st);
}

static void test_settings(void) {
  const char *tmp = mp_test_tmpdir();
  clear_env();
  char *home = mp_path_join(tmp, "hfhome");
  setenv("HF_HOME", home, 1);
  mp_hub_settings s;
  CHECK_OK(mp_hub_settings_load(&s));
  CHECK_STREQ(s.endpoint, "https://huggingface.co");
  CHECK(s.token == NULL && !s.offline && s.etag_timeout == 10 && s.download_timeout == 10 && s.max_attempts == 5);
  char *want = mp_path_join(home, "hub");
  CHECK_STREQ(s.cache_dir, want);
  free(want);
  mp_hub_settings_free(&s);

  mp_test_write(home, "token", "  file-token \n");
  setenv("HF_ENDPOINT", "http://127.0.0.1:9/mirror//", 1);
  setenv("HF_HUB_ETAG_TIMEOUT", "3", 1);
  setenv("HF_HUB_DOWNLOAD_TIMEOUT", "nonsense", 1);
  setenv("HF_HUB_CACHE", "/somewhere/else", 1);
  CHECK_OK(mp_hub_settings_load(&s));
  CHECK_STREQ(s.endpoint, "http://127.0.0.1:9/mirror");
  CHECK(s.token && !strcmp(s.token, "file-token"));
  CHECK(s.etag_timeout == 3 && s.download_timeout == 10);
  CHECK_STREQ(s.cache_dir, "/somewhere/else");
  mp_hub_settings_free(&s);
  setenv("HUGGING_FACE_HUB_TOKEN", "legacy", 1);
  CHECK_OK(mp_hub_settings_load(&s));
  CHECK(s.token && !strcmp(s.token, "legacy"));
  mp_hub_settings_free(&s);
  setenv("HF_TOKEN", "primary", 1);
  CHECK_OK(mp_hub_settings_load(&s));
  CHECK(s.token && !strcmp(s.token, "primary"));
  mp_hub_settings_free(&s);

  const char *on[] = {"1", "ON", "yes", "True"}, *off[] = {"0", "false", "no", ""};
  for (size_t i = 0; i < 4; i++) {
    setenv("HF_HUB_OFFLINE", on[i], 1);
    CHECKF(mp_hub_offline(), "%s", on[i]);
    setenv("HF_HUB_OFFLINE", off[i], 1);
    CHECKF(!mp_hub_offline(), "%s", off[i]);
  }
  unsetenv("HF_HUB_OFFLINE");
  setenv("TRANSFORMERS_OFFLINE", "1", 1);
  CHECK(mp_hub_offline());
  clear_env();
  free(home);
}

static void test_download_without_server(void) {
  const char *tmp = mp_test_tmpdir();
  clear_env();
  char *cache = mp_path_join(tmp, "dl-cache");
  setenv("HF_HUB_CACHE", cache, 1);
  setenv("HF_HOME", tmp, 1);
  mp_test_write(cache, "models--org--cached/refs/main", "3333333333333333333333333333333333333333");
  mp_test_write(cache, "models--org--cached/snapshots/3333333333333333333333333333333333333333/config.json", "{}");
  mp_hub_request rq = {0};
  mp_hub_result r;
  /* bad arguments */
  rq.repo_id = "a/b/c";
  CHECK(mp_hub_download(&rq, &r) == MP_ERR_INVALID_ARG);
  rq.repo_id = "org/cached";
  rq.repo_type = "space";
  CHECK(mp_hub_download(&rq, &r) == MP_ERR_INVALID_ARG);
  rq.repo_type = NULL;
  const char *evil[] = {"../../etc/passwd"};
  rq.files = evil;
  rq.n_files = 1;
  CHECK(mp_hub_download(&rq, &r) == MP_ERR_SECURITY);
  rq.files = NULL;
  rq.n_files = 0;
  /* offline: the cache answers, or a clear error */
  setenv("HF_HUB_OFFLINE", "1", 1);
  CHECK_OK(mp_hub_download(&rq, &r));
  CHECK(r.used_cache_only && r.commit && !strcmp(r.commit, "3333333333333333333333333333333333333333"));
  mp_hub_result_free(&r);
  const char *cfg[] = {"config.json"}, *missing[] = {"model.safetensors"};
  rq.files = cfg;
  rq.n_files = 1;
  CHECK_OK(mp_hub_download(&rq, &r));
  mp_hub_result_free(&r);
  rq.files = missing;
  CHECK(mp_hub_download(&rq, &r) == MP_ERR_NOT_FOUND);
  CHECKF(strstr(mp_last_error(), "HF_HUB_OFFLINE") != NULL, "%s", mp_last_error());
  rq.files = NULL;
  rq.n_files = 0;
  rq.repo_id = "org/absent";
  CHECK(mp_hub_download(&rq, &r) == MP_ERR_NOT_FOUND);
  CHECKF(strstr(mp_last_error(), "HF_HUB_OFFLINE") != NULL, "%s", mp_last_error());
  /* online but unreachable (nothing listens on port 9 here): cached revision used, else an error */
  unsetenv("HF_HUB_OFFLINE");
  setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1);
  setenv("HF_HUB_ETAG_TIMEOUT", "2", 1);
  rq.repo_id = "org/cached";
  CHECK_OK(mp_hub_download(&rq, &r));
  CHECK(r.used_cache_only);
  mp_hub_result_free(&r);
  rq.repo_id = "org/absent";
  CHECK(mp_hub_download(&rq, &r) != MP_OK);
  CHECK(mp_hub_last_error_was_network());
  CHECKF(strstr(mp_last_error(), "127.0.0.1:9") != NULL, "%s", mp_last_error());
  char *absent = mp_path_join(cache, "models--org--absent");
  CHECK(!mp_path_exists(absent)); /* nothing written for a repo that could not be reached */
  free(absent);
  clear_env();
  free(cache);
}

int main(void) {
  RUN(test_names);
  RUN(test_cached_snapshot);
  RUN(test_settings);
  RUN(test_download_without_server);
  return mp_test_done();
}
