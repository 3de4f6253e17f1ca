/* The weights table: one name -> tensor view map over a checkpoint made of one or several
 * safetensors or PyTorch files. Index files (*.index.json) are validated against their shards:
 * every shard exists, every weight_map entry is found in the shard it names, no tensor is in two
 * shards, total_size is not larger than the shards. */
#include "format/weights.h"

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/str.h"
#include "format/name_index.h"
#include "format/safetensors.h"
#include "format/torch_pickle.h"

struct mp_weights {
  mp_weights_format format;
  char **files;
  mp_safetensors **st; /* per file, NULL for torch files */
  mp_torch_file **tf;  /* per file, NULL for safetensors files */
  size_t nfiles;
  const mp_tensor **tab;
  size_t *file_of; /* per table entry: index into files */
  size_t n, cap;
  mp_name_index ix;
};

void mp_weights_close(mp_weights *w) {
  if (!w) return;
  for (size_t i = 0; i < w->nfiles; i++) {
    mp_safetensors_close(w->st[i]);
    mp_torch_close(w->tf[i]);
    free(w->files[i]);
  }
  free(w->files);
  free(w->st);
  free(w->tf);
  free(w->tab);
  free(w->file_of);
  mp_name_index_free(&w->ix);
  free(w);
}

/* Opens one weight file (safetensors or torch) and appends its tensors to the table. */
static mp_status add_file(mp_weights *w, const char *path, int torch) {
  size_t fi = w->nfiles;
  char **nf = realloc(w->files, (fi + 1) * sizeof *nf);
  if (!nf) return mp_err(MP_ERR_NOMEM, "out of memory");
  w->files = nf;
  mp_safetensors **ns = realloc(w->st, (fi + 1) * sizeof *ns);
  if (!ns) return mp_err(MP_ERR_NOMEM, "out of memory");
  w->st = ns;
  mp_torch_file **nt = realloc(w->tf, (fi + 1) * sizeof *nt);
  if (!nt) return mp_err(MP_ERR_NOMEM, "out of memory");
  w->tf = nt;
  w->files[fi] = strdup(path);
  w->st[fi] = NULL;
  w->tf[fi] = NULL;
  if (!w->files[fi]) return mp_err(MP_ERR_NOMEM, "out of memory");
  w->nfiles++;
  size_t count;
  if (torch) {
    MP_TRY(mp_torch_open(path, &w->tf[fi]));
    count = mp_torch_count(w->tf[fi]);
  } else {
    MP_TRY(mp_safetensors_open(path, &w->st[fi]));
    count = mp_safetensors_count(w->st[fi]);
  }
  if (w->n + count > w->cap) {
    size_t nc = w->cap ? w->cap : 256;
    while (nc < w->n + count)
      nc *= 2;
    const mp_tensor **t = realloc(w->tab, nc * sizeof *t);
    if (!t) return mp_err(MP_ERR_NOMEM, "out of memory");
    w->tab = t;
    size_t *f = realloc(w->file_of, nc * sizeof *f);
    if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
    w->file_of = f;
    w->cap = nc;
  }
  for (size_t i = 0; i < count; i++) {
    const mp_tensor *t = torch ? mp_torch_at(w->tf[fi], i) : mp_safetensors_at(w->st[fi], i);
    if (!t || !t->name) return mp_err(MP_ERR_INTERNAL, "%s: tensor %zu missing", path, i);
    size_t prev = 0;
    mp_status s = mp_name_index_put(&w->ix, t->name, w->n, &prev);
    if (s == MP_ERR_INVALID_ARG) {
      const char *other = w->files[w->file_of[prev]];
      if (w->file_of[prev] == fi) return mp_err(MP_ERR_FORMAT, "%s: tensor '%.200s' appears twice", path, t->name);
      return mp_err(MP_ERR_FORMAT, "%s: tensor '%.200s' is also in %s: a tensor must be in exactly one shard", path,
                    t->name, other);
    }
    if (s != MP_OK) return s;
    w->tab[w->n] = t;
    w->file_of[w->n] = fi;
    w->n++;
  }
  return MP_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Reads <...>.index.json and opens its shards (from the index's folder). */
static mp_status open_index(mp_weights *w, const char *index_path) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *root = NULL;
  char *dir = NULL;
  const char **shards = NULL;
  mp_name_index seen;
  mp_name_index_init(&seen);
  mp_status s = mp_json_parse_file(index_path, &a, &root);
  if (s != MP_OK) goto out;
  if (root->type != MP_JSON_OBJECT) {
    s = mp_err(MP_ERR_FORMAT, "%s: expected a JSON object with \"weight_map\", found a %s", index_path,
               mp_json_type_name(root->type));
    goto out;
  }
  const mp_json *wm = mp_json_get(root, "weight_map");
  if (!wm || wm->type != MP_JSON_OBJECT || wm->len == 0) {
    s = mp_err(MP_ERR_FORMAT, "%s: \"weight_map\" is missing, empty or not an object {tensor name: shard file}",
               index_path);
    goto out;
  }
  int64_t total_size = -1;
  const mp_json *meta = mp_json_get(root, "metadata");
  if (meta && meta->type != MP_JSON_OBJECT && meta->type != MP_JSON_NULL) {
    s = mp_err(MP_ERR_FORMAT, "%s: \"metadata\" must be an object", index_path);
    goto out;
  }
  const mp_json *ts = meta ? mp_json_get(meta, "total_size") : NULL;
  if (ts) {
    if (ts->type != MP_JSON_NUMBER || ts->num < 0 || ts->num > 9.0e18) {
      s = mp_err(MP_ERR_FORMAT, "%s: metadata.total_size must be a non-negative number of bytes", index_path);
      goto out;
    }
    total_size = ts->is_int ? ts->i : (int64_t)ts->num;
  }
  /* entries: plain file names in the same folder, no duplicate tensor names */
  shards = calloc(wm->len, sizeof *shards);
  if (!shards) {
    s = mp_err(MP_ERR_NOMEM, "out of memory");
    goto out;
  }
  size_t nsh = 0;
  int torch = -1;
  for (size_t i = 0; i < wm->len; i++) {
    const char *tn = wm->keys[i];
    const mp_json *v = wm->items[i];
    if (v->type != MP_JSON_STRING || v->len == 0 || strlen(v->str) != v->len) {
      s = mp_err(MP_ERR_FORMAT, "%s: weight_map['%.200s'] must be a shard file name", index_path, tn);
      goto out;
    }
    if (strchr(v->str, '/') || strcmp(v->str, ".") == 0 || strcmp(v->str, "..") == 0) {
      s = mp_err(MP_ERR_SECURITY,
                 "%s: weight_map['%.200s'] points to '%.200s', which is not a file in the index's "
                 "folder; refusing to read it",
                 index_path, tn, v->str);
      goto out;
    }
    if (mp_name_index_put(&seen, tn, i, NULL) != MP_OK) {
      s = mp_err(MP_ERR_FORMAT, "%s: tensor '%.200s' appears twice in weight_map", index_path, tn);
      goto out;
    }
    int is_torch = !mp_str_ends_with(v->str, ".safetensors");
    if (torch < 0)
      torch = is_torch;
    else if (torch != is_torch) {
      s = mp_err(MP_ERR_FORMAT, "%s: weight_map mixes safetensors and other shard files ('%.200s')", index_path,
                 v->str);
      goto out;
    }
    shards[nsh++] = v->str;
  }
  qsort(shards, nsh, sizeof *shards, cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < nsh; i++)
    if (u == 0 || strcmp(shards[u - 1], shards[i]) != 0) shards[u++] = shards[i];
  nsh = u;
  w->format = torch ? MP_WEIGHTS_TORCH_SHARDED : MP_WEIGHTS_SAFETENSORS_SHARDED;
  dir = mp_path_dirname(index_path);
  if (!dir) {
    s = mp_err(MP_ERR_NOMEM, "out of memory");
    goto out;
  }
  uint64_t file_bytes = 0;
  for (size_t k = 0; k < nsh; k++) {
    char *p = mp_path_join(dir, shards[k]);
    if (!p) {
      s = mp_err(MP_ERR_NOMEM, "out of memory");
      goto out;
    }
    if (!mp_is_file(p)) {
      s = mp_err(MP_ERR_NOT_FOUND, "%s: shard %s listed in the index is missing (download the complete checkpoint)",
                 index_path, p);
      free(p);
      goto out;
    }
    int64_t fs = mp_file_size(p);
    if (fs > 0) file_bytes += (uint64_t)fs;
    s = add_file(w, p, torch);
    free(p);
    if (s != MP_OK) goto out;
  }
  /* every weight_map entry is in the shard it names */
  uint64_t tensor_bytes = 0;
  for (size_t i = 0; i < wm->len; i++) {
    size_t ti;
    const char *want = wm->items[i]->str;
    if (!mp_name_index_get(&w->ix, wm->keys[i], &ti)) {
      s = mp_err(MP_ERR_FORMAT, "%s: weight_map puts tensor '%.200s' in %s, but that shard does not contain it",
                 index_path, wm->keys[i], want);
      goto out;
    }
    const char *got = mp_path_basename(w->files[w->file_of[ti]]);
    if (strcmp(got, want) != 0) {
      s = mp_err(MP_ERR_FORMAT, "%s: weight_map puts tensor '%.200s' in %s, but it is in %s", index_path, wm->keys[i],
                 want, got);
      goto out;
    }
  }
  for (size_t i = 0; i < w->n; i++) {
    tensor_bytes += w->tab[i]->nbytes;
    if (!mp_name_index_get(&seen, w->tab[i]->name, NULL))
      mp_log(MP_LOG_WARN, "%s: tensor '%.200s' of %s is not listed in weight_map (kept)", index_path, w->tab[i]->name,
             w->files[w->file_of[i]]);
  }
  if (total_size >= 0 && (uint64_t)total_size > file_bytes) {
    s = mp_err(MP_ERR_FORMAT,
               "%s: metadata.total_size is %lld bytes but the %zu shard files hold only %llu bytes: "
               "the index does not belong to these shards",
               index_path, (long long)total_size, nsh, (unsigned long long)file_bytes);
    goto out;
  }
  if (total_size >= 0 && (uint64_t)total_size != tensor_bytes)
    mp_log(MP_LOG_WARN, "%s: metadata.total_size %lld differs from the tensors' %llu bytes", index_path,
           (long long)total_size, (unsigned long long)tensor_bytes);
out:
  mp_name_index_free(&seen);
  free(shards);
  free(dir);
  mp_arena_free(&a);
  return s;
}

/* Guesses whether a single file is a PyTorch checkpoint (zip or raw pickle) by name, then by
 * its first bytes. */
static int looks_torch(const char *path) {
  if (mp_str_ends_with(path, ".safetensors")) return 0;
  if (mp_str_ends_with(path, ".bin") || mp_str_ends_with(path, ".pt") || mp_str_ends_with(path, ".pth")) return 1;
  mp_mmap m;
  if (mp_mmap_open(path, &m) != MP_OK) return 0;
  int r =
      m.size >= 4 && ((m.data[0] == 'P' && m.data[1] == 'K' && m.data[2] == 3 && m.data[3] == 4) || m.data[0] == 0x80);
  mp_mmap_close(&m);
  mp_err_clear();
  return r;
}

static mp_status open_path(mp_weights *w, const char *path) {
  if (mp_is_dir(path)) {
    static const char *const pref[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                       "pytorch_model.bin.index.json"};
    for (size_t i = 0; i < 4; i++) {
      char *p = mp_path_join(path, pref[i]);
      if (!p) return mp_err(MP_ERR_NOMEM, "out of memory");
      if (mp_is_file(p)) {
        mp_status s = open_path(w, p);
        free(p);
        return s;
      }
      free(p);
    }
    return mp_err(MP_ERR_NOT_FOUND,
                  "%s: no weights found (looked for model.safetensors, "
                  "model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json)",
                  path);
  }
  if (!mp_path_exists(path)) return mp_err(MP_ERR_NOT_FOUND, "%s: no such file or folder", path);
  if (mp_str_ends_with(path, ".index.json")) return open_index(w, path);
  int torch = looks_torch(path);
  w->format = torch ? MP_WEIGHTS_TORCH : MP_WEIGHTS_SAFETENSORS;
  return add_file(w, path, torch);
}

mp_status mp_weights_open(const char *path, mp_weights **out) {
  *out = NULL;
  if (!path || !*path) return mp_err(MP_ERR_INVALID_ARG, "mp_weights_open: no path");
  mp_weights *w = calloc(1, sizeof *w);
  if (!w) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_name_index_init(&w->ix);
  mp_status s = open_path(w, path);
  if (s != MP_OK) {
    mp_weights_close(w);
    return s;
  }
  *out = w;
  return MP_OK;
}

mp_weights_format mp_weights_get_format(const mp_weights *w) { return w ? w->format : 0; }
size_t mp_weights_count(const mp_weights *w) { return w ? w->n : 0; }
const mp_tensor *mp_weights_at(const mp_weights *w, size_t i) { return w && i < w->n ? w->tab[i] : NULL; }

const mp_tensor *mp_weights_find(const mp_weights *w, const char *name) {
  size_t i;
  if (!w || !name || !mp_name_index_get(&w->ix, name, &i)) return NULL;
  return w->tab[i];
}

size_t mp_weights_file_count(const mp_weights *w) { return w ? w->nfiles : 0; }
const char *mp_weights_file(const mp_weights *w, size_t i) { return w && i < w->nfiles ? w->files[i] : NULL; }

const char *mp_weights_metadata(const mp_weights *w, const char *key) {
  if (!w) return NULL;
  for (size_t i = 0; i < w->nfiles; i++)
    if (w->st[i]) return mp_safetensors_metadata(w->st[i], key);
  return NULL;
}

const char *mp_weights_file_of(const mp_weights *w, size_t i) { return w && i < w->n ? w->files[w->file_of[i]] : NULL; }
