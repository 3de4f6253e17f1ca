/* Hugging Face model folders: resolving a user's model reference and reading config.json.
 *
 * A reference is a local folder or file, or a hub repo id ("org/name", optionally
 * "org/name@revision") looked up in the local Hugging Face cache exactly as huggingface_hub
 * lays it out: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub; then models--ORG--NAME/snapshots/<commit>/ where the commit is
 * refs/<revision> (default "main") or the revision itself when it names a snapshot. */
#ifndef MP_FORMAT_HF_H
#define MP_FORMAT_HF_H
#include "core/arena.h"
#include "core/json.h"
#include "mlxport.h"

/* Resolves `ref` to a malloc'd path (folder or file). A repo id that is not in the cache (or
 * whose snapshot lacks config.json or weights) is downloaded from the Hub (src/hub/hub.h) unless
 * HF_HUB_OFFLINE is set. MP_ERR_NOT_FOUND with a message listing where it looked and how to get
 * the model. */
mp_status mp_hf_resolve(const char *ref, char **out_path);
/* The same, from the cache only (never downloads). */
mp_status mp_hf_resolve_cached(const char *ref, char **out_path);
/* The hub cache folder that would be searched (malloc'd). */
char *mp_hf_cache_dir(void);
/* The snapshot folder (malloc'd) of `revision` of a repo in that cache: <cache>/<repo_type>s--ORG--NAME
 * (repo_type "model" or "dataset") / snapshots/<commit>, the commit named by refs/<revision> or
 * the revision itself (src/hub/hub.h: mp_hub_cached_snapshot). NULL when it is not cached (or out
 * of memory). *storage_out, when not NULL, gets the repo's cache folder (malloc'd; NULL only when
 * out of memory) for messages. */
char *mp_hf_cached_snapshot(const char *repo_type, const char *repo_id, const char *revision, char **storage_out);
/* For a path in a cached model snapshot (.../models--ORG--NAME/snapshots/<commit>...): the repo id
 * "ORG/NAME" (malloc'd), NULL when the path is not in that layout. */
char *mp_hf_snapshot_repo_id(const char *path);
/* For a path in a cached snapshot (.../snapshots/<commit>...): the commit when it is 40 hex digits,
 * copied into buf and returned; NULL otherwise. */
const char *mp_hf_snapshot_commit(const char *path, char buf[41]);
/* A dataset repo "ORG/NAME" in the cache: the snapshot of refs/main, else the most recently
 * modified snapshot (malloc'd). MP_ERR_NOT_FOUND, saying how to get it, when it is not cached. */
mp_status mp_hf_dataset_snapshot(const char *org_name, char **out_dir);

/* What kind of tokenizer files a folder holds. */
typedef enum mp_tokenizer_kind {
  MP_TOK_NONE = 0,
  MP_TOK_JSON,            /* tokenizer.json (kind of model in `model_type` below) */
  MP_TOK_WORDPIECE_VOCAB, /* vocab.txt only */
  MP_TOK_BPE_VOCAB,       /* vocab.json + merges.txt */
  MP_TOK_SPM,             /* spm.model / sentencepiece.bpe.model / tokenizer.model */
} mp_tokenizer_kind;

typedef struct mp_tokenizer_info {
  mp_tokenizer_kind kind;
  char model_type[32];      /* WordPiece / BPE / Unigram / WordLevel (from tokenizer.json or implied) */
  char file[64];            /* the main tokenizer file name */
  char tokenizer_class[64]; /* tokenizer_config.json "tokenizer_class", if any */
} mp_tokenizer_info;

/* Inspects the tokenizer files of a model folder (never fails: kind NONE when nothing found). */
void mp_hf_tokenizer_info(const char *dir, mp_tokenizer_info *out);

/* Loads <dir>/config.json into the arena (MP_ERR_NOT_FOUND if absent). */
mp_status mp_hf_load_config(const char *dir, mp_arena *arena, mp_json **out);
#endif
