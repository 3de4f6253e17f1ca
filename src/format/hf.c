/* Hugging Face model folders: resolving a model reference (folder, file or hub repo id through the
 * shared cache, downloading a repo id that is not cached), tokenizer files, config.json. */
#include "format/hf.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "hub/hub.h"

char *mp_hf_cache_dir(void) {
  const char *e = getenv("HF_HUB_CACHE");
  if (e && *e) return strdup(e);
  e = getenv("HUGGINGFACE_HUB_CACHE");
  if (e && *e) return strdup(e);
  e = getenv("HF_HOME");
  if (e && *e) return mp_path_join(e, "hub");
  e = getenv("XDG_CACHE_HOME");
  if (e && *e) return mp_path_join(e, "huggingface/hub");
  e = getenv("HOME");
  return mp_path_join(e && *e ? e : "/", ".cache/huggingface/hub");
}

char *mp_hf_cached_snapshot(const char *repo_type, const char *repo_id, const char *revision, char **storage_out) {
  if (storage_out) *storage_out = NULL;
  char *cache = mp_hf_cache_dir();
  char *folder = mp_hub_repo_folder(repo_type, repo_id);
  char *storage = cache && folder ? mp_path_join(cache, folder) : NULL;
  free(folder);
  free(cache);
  char *commit = NULL;
  char *snap = storage ? mp_hub_cached_snapshot(storage, revision, &commit) : NULL;
  free(commit);
  if (storage_out)
    *storage_out = storage;
  else
    free(storage);
  return snap;
}

char *mp_hf_snapshot_repo_id(const char *path) {
  const char *m = strstr(path, "models--");
  if (!m) return NULL;
  m += 8;
  const char *end = strstr(m, "/snapshots/");
  if (!end) return NULL;
  mp_sb sb;
  mp_sb_init(&sb);
  for (const char *p = m; p < end; p++) {
    if (p[0] == '-' && p[1] == '-') {
      mp_sb_putc(&sb, '/');
      p++;
    } else {
      mp_sb_putc(&sb, *p);
    }
  }
  return sb.oom ? NULL : mp_sb_steal(&sb);
}

const char *mp_hf_snapshot_commit(const char *path, char buf[41]) {
  const char *p = strstr(path, "/snapshots/");
  if (!p) return NULL;
  p += 11;
  size_t n = strcspn(p, "/");
  if (n != 40) return NULL;
  for (size_t i = 0; i < 40; i++)
    if (!isxdigit((unsigned char)p[i])) return NULL;
  memcpy(buf, p, 40);
  buf[40] = 0;
  return buf;
}

/* The most recently modified folder under <repo_dir>/snapshots (malloc'd), or NULL. */
static char *newest_snapshot(const char *repo_dir) {
  char *sdir = mp_path_join(repo_dir, "snapshots");
  if (!sdir) return NULL;
  DIR *d = opendir(sdir);
  char *best = NULL;
  struct timespec bt = {0, 0};
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char *p = mp_path_join(sdir, e->d_name);
      struct stat st;
      if (p && stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
          (!best || st.st_mtim.tv_sec > bt.tv_sec ||
           (st.st_mtim.tv_sec == bt.tv_sec && st.st_mtim.tv_nsec > bt.tv_nsec))) {
        free(best);
        best = p;
        bt = st.st_mtim;
      } else {
        free(p);
      }
    }
    closedir(d);
  }
  free(sdir);
  return best;
}

mp_status mp_hf_dataset_snapshot(const char *org_name, char **out_dir) {
  *out_dir = NULL;
  char *repo = NULL;
  char *snap = mp_hf_cached_snapshot("dataset", org_name, "main", &repo);
  if (!repo) return mp_err(MP_ERR_NOMEM, "out of memory");
  if (!snap && mp_is_dir(repo)) snap = newest_snapshot(repo);
  if (!snap) {
    mp_status s = mp_err(MP_ERR_NOT_FOUND,
                         "dataset '%s' is not in the Hugging Face cache (%s); download it (e.g. "
                         "`huggingface-cli download --repo-type dataset %s`) or give a local path",
                         org_name, repo, org_name);
    free(repo);
    return s;
  }
  free(repo);
  *out_dir = snap;
  return MP_OK;
}

/* Cache-only resolution, with the hub client's cache rules (src/hub/hub.h: repo id syntax, repo
 * folder name, refs/<revision> or the commit itself). *is_repo_id tells whether ref has the form
 * of a repo id. */
static mp_status resolve_cached(const char *ref, char **out_path, int *is_repo_id) {
  *out_path = NULL;
  *is_repo_id = 0;
  if (!ref || !*ref) return mp_err(MP_ERR_INVALID_ARG, "empty model reference");
  if (mp_path_exists(ref)) {
    *out_path = strdup(ref);
    return *out_path ? MP_OK : mp_err(MP_ERR_NOMEM, "out of memory");
  }
  /* split revision */
  const char *at = strchr(ref, '@');
  size_t idlen = at ? (size_t)(at - ref) : strlen(ref);
  const char *rev = at ? at + 1 : "main";
  char id[256];
  if (idlen >= sizeof id || !(snprintf(id, sizeof id, "%.*s", (int)idlen, ref), mp_hub_valid_repo_id(id)) ||
      (at && !mp_hub_valid_revision(rev)))
    return mp_err(MP_ERR_NOT_FOUND, "%s: no such file or folder (and not a Hugging Face repo id)", ref);
  *is_repo_id = 1;
  char *repo_dir = NULL;
  char *snap = mp_hf_cached_snapshot("model", id, rev, &repo_dir);
  mp_status st = MP_OK;
  if (!repo_dir) {
    st = mp_err(MP_ERR_NOMEM, "out of memory");
  } else if (snap) {
    *out_path = snap;
  } else if (mp_is_dir(repo_dir)) {
    st = mp_err(MP_ERR_NOT_FOUND,
                "model '%s' is in the Hugging Face cache (%s) but revision '%s' has no snapshot there; "
                "download it with: mlxport download %s --revision %s (or huggingface-cli download %s --revision %s)",
                id, repo_dir, rev, id, rev, id, rev);
  } else {
    char *cache = mp_hf_cache_dir();
    st = mp_err(MP_ERR_NOT_FOUND,
                "model '%s' is not a local folder and not in the Hugging Face cache (looked in %s; set "
                "HF_HUB_CACHE or HF_HOME to use another cache). Get it with: mlxport download %s "
                "(or huggingface-cli download %s, or pass the path of a local model folder)",
                id, cache, id, id);
    free(cache);
  }
  free(repo_dir);
  return st;
}

mp_status mp_hf_resolve_cached(const char *ref, char **out_path) {
  int is_id;
  return resolve_cached(ref, out_path, &is_id);
}

/* Every shard named by a sharded checkpoint's index (weight_map values) is present. */
static int index_shards_present(const char *dir, const char *index_name) {
  char *ip = mp_path_join(dir, index_name);
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j = NULL;
  int ok = ip && mp_json_parse_file(ip, &a, &j) == MP_OK;
  const mp_json *wm = ok ? mp_json_get(j, "weight_map") : NULL;
  ok = wm && wm->type == MP_JSON_OBJECT && wm->len > 0;
  for (size_t i = 0; ok && i < wm->len; i++) {
    const mp_json *v = wm->items[i];
    char *sp = v->type == MP_JSON_STRING && !strchr(v->str, '/') ? mp_path_join(dir, v->str) : NULL;
    ok = sp && mp_is_file(sp);
    free(sp);
  }
  mp_err_clear();
  mp_arena_free(&a);
  free(ip);
  return ok;
}

/* A snapshot that a download left half done (no config.json, no weights file, or a shard of a
 * sharded checkpoint missing) is completed when the Hub is reachable, never used half. */
static int snapshot_looks_complete(const char *dir) {
  char *cfg = mp_path_join(dir, "config.json");
  int ok = cfg && mp_is_file(cfg);
  free(cfg);
  if (!ok) return 0;
  static const char *const index_names[] = {"model.safetensors.index.json", "pytorch_model.bin.index.json"};
  for (size_t i = 0; i < 2; i++) {
    char *ip = mp_path_join(dir, index_names[i]);
    int has = ip && mp_is_file(ip);
    free(ip);
    if (has) return index_shards_present(dir, index_names[i]);
  }
  DIR *d = opendir(dir);
  if (!d) return 0;
  int weights = 0;
  struct dirent *e;
  while (!weights && (e = readdir(d))) {
    size_t n = strlen(e->d_name);
    weights = (n > 12 && !strcmp(e->d_name + n - 12, ".safetensors")) || !strcmp(e->d_name, "pytorch_model.bin");
  }
  closedir(d);
  return weights;
}

mp_status mp_hf_resolve(const char *ref, char **out_path) {
  int is_id = 0;
  mp_status st = resolve_cached(ref, out_path, &is_id);
  if (!is_id || (st != MP_OK && st != MP_ERR_NOT_FOUND)) return st;
  if (st == MP_OK && (mp_hub_offline() || snapshot_looks_complete(*out_path))) return MP_OK;
  if (st != MP_OK && mp_hub_offline()) return mp_err_prefix(st, "HF_HUB_OFFLINE is set, so it was not downloaded");
  /* on demand: download the repo id (or complete a half snapshot) into the shared cache */
  char saved[2048];
  snprintf(saved, sizeof saved, "%s", st ? mp_last_error() : "");
  const char *at = strchr(ref, '@');
  char id[256];
  snprintf(id, sizeof id, "%.*s", (int)(at ? (size_t)(at - ref) : strlen(ref)), ref);
  mp_hub_request rq = {0};
  rq.repo_id = id;
  rq.revision = at ? at + 1 : NULL;
  const char *ep = getenv("HF_ENDPOINT");
  mp_log(MP_LOG_INFO, "%s: %s; downloading it from %s", id,
         st ? "not in the Hugging Face cache" : "completing the cached snapshot",
         ep && *ep ? ep : "https://huggingface.co");
  mp_hub_result res;
  mp_status ds = mp_hub_download(&rq, &res);
  if (ds == MP_OK) {
    free(*out_path);
    *out_path = res.path;
    res.path = NULL;
    mp_hub_result_free(&res);
    return MP_OK;
  }
  if (st == MP_OK) { /* keep using what the cache has, as before */
    mp_log(MP_LOG_WARN, "%s: could not complete the cached snapshot: %s", id, mp_last_error());
    mp_err_clear();
    return MP_OK;
  }
  if (mp_hub_last_error_was_network()) {
    char dl[2048];
    snprintf(dl, sizeof dl, "%s", mp_last_error());
    return mp_err(MP_ERR_NOT_FOUND, "%s; downloading it failed: %s", saved, dl);
  }
  return ds;
}

static int file_in(const char *dir, const char *name) {
  char *p = mp_path_join(dir, name);
  int ok = p && mp_is_file(p);
  free(p);
  return ok;
}

/* Reads "model": {"type": ...} from tokenizer.json without parsing the whole (large) file:
 * tokenizer.json files are written by serde with "model" last, so a full parse is the only
 * reliable way; we do that but only keep the type. */
static void tokenizer_json_model_type(const char *path, char *out, size_t cap) {
  mp_arena a;
  mp_arena_init(&a, 1 << 20);
  mp_json *j = NULL;
  if (mp_json_parse_file(path, &a, &j) == MP_OK) {
    const mp_json *m = mp_json_get(j, "model");
    const char *t = mp_json_get_str(m, "type", NULL);
    if (!t && m) {
      /* older files omit "type": infer from the keys */
      if (mp_json_get(m, "merges"))
        t = "BPE";
      else if (mp_json_get(m, "continuing_subword_prefix"))
        t = "WordPiece";
      else if (mp_json_get(m, "vocab") && mp_json_get(m, "vocab")->type == MP_JSON_ARRAY)
        t = "Unigram";
    }
    snprintf(out, cap, "%s", t ? t : "unknown");
  } else {
    snprintf(out, cap, "invalid (%s)", mp_last_error());
    mp_err_clear();
  }
  mp_arena_free(&a);
}

void mp_hf_tokenizer_info(const char *dir, mp_tokenizer_info *out) {
  memset(out, 0, sizeof *out);
  if (!mp_is_dir(dir)) return;
  if (file_in(dir, "tokenizer.json")) {
    out->kind = MP_TOK_JSON;
    snprintf(out->file, sizeof out->file, "tokenizer.json");
    char *p = mp_path_join(dir, "tokenizer.json");
    if (p) tokenizer_json_model_type(p, out->model_type, sizeof out->model_type);
    free(p);
  } else if (file_in(dir, "spm.model") || file_in(dir, "sentencepiece.bpe.model") || file_in(dir, "tokenizer.model")) {
    out->kind = MP_TOK_SPM;
    snprintf(out->file, sizeof out->file, "%s",
             file_in(dir, "spm.model")                 ? "spm.model"
             : file_in(dir, "sentencepiece.bpe.model") ? "sentencepiece.bpe.model"
                                                       : "tokenizer.model");
    snprintf(out->model_type, sizeof out->model_type, "SentencePiece");
  } else if (file_in(dir, "vocab.json") && file_in(dir, "merges.txt")) {
    out->kind = MP_TOK_BPE_VOCAB;
    snprintf(out->file, sizeof out->file, "vocab.json + merges.txt");
    snprintf(out->model_type, sizeof out->model_type, "BPE");
  } else if (file_in(dir, "vocab.txt")) {
    out->kind = MP_TOK_WORDPIECE_VOCAB;
    snprintf(out->file, sizeof out->file, "vocab.txt");
    snprintf(out->model_type, sizeof out->model_type, "WordPiece");
  }
  if (file_in(dir, "tokenizer_config.json")) {
    char *p = mp_path_join(dir, "tokenizer_config.json");
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_json *j = NULL;
    if (p && mp_json_parse_file(p, &a, &j) == MP_OK)
      snprintf(out->tokenizer_class, sizeof out->tokenizer_class, "%s", mp_json_get_str(j, "tokenizer_class", ""));
    mp_err_clear();
    mp_arena_free(&a);
    free(p);
  }
}

mp_status mp_hf_load_config(const char *dir, mp_arena *arena, mp_json **out) {
  *out = NULL;
  char *p = mp_path_join(dir, "config.json");
  if (!p) return mp_err(MP_ERR_NOMEM, "out of memory");
  if (!mp_is_file(p)) {
    mp_status s =
        mp_err(MP_ERR_NOT_FOUND, "%s: no config.json in this folder (is it a Hugging Face model folder?)", dir);
    free(p);
    return s;
  }
  mp_status s = mp_json_parse_file(p, arena, out);
  if (!s && (*out)->type != MP_JSON_OBJECT) s = mp_err(MP_ERR_FORMAT, "%s: config.json is not a JSON object", p);
  free(p);
  return s;
}
