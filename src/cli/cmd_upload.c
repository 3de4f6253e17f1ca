/* mlxport upload: publish an MLX folder (or any folder) to a Hugging Face Hub repo as one commit,
 * like `hf upload` / huggingface_hub.upload_folder (src/hub/upload.c speaks the protocol). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "hub/upload.h"

const char mp_cmd_upload_summary[] = "upload an MLX folder to a Hugging Face Hub repo (one commit)";

static const char *k_help =
    "usage: mlxport upload MLX_FOLDER REPO_ID [--private] [--revision BRANCH] [--commit-message M]\n"
    "                      [--commit-description D] [--create-pr] [--repo-type model|dataset]\n"
    "                      [--token T] [--dry-run] [--quiet] [--json]\n"
    "\n"
    "Uploads every file of MLX_FOLDER (except .git/ and .cache/huggingface/) to the Hub repo REPO_ID\n"
    "(HF_ENDPOINT, default https://huggingface.co) as one commit, speaking huggingface_hub's protocol:\n"
    "the repo is created when missing, the server says which files go through LFS, large files are\n"
    "sent with the LFS basic or multipart transfer, and the commit names the branch head it was\n"
    "based on (parentCommit). Files the repo already has unchanged are not sent again; when nothing\n"
    "changed there is no commit. The commit is made only after the server confirms every LFS file,\n"
    "so an interrupted upload never leaves a commit with missing files: run it again to finish.\n"
    "\n"
    "  MLX_FOLDER              the folder to publish (e.g. the output of `mlxport convert`)\n"
    "  REPO_ID                 org/name (or name)\n"
    "  --private               create the repo private (ignored when it exists)\n"
    "  --revision BRANCH       the branch to commit to (default main; created from main if missing)\n"
    "  --commit-message M      commit title (default \"Upload folder with mlxport\")\n"
    "  --commit-description D  commit description\n"
    "  --create-pr             open a pull request against main instead of committing to it\n"
    "  --repo-type T           model (default) or dataset\n"
    "  --token T               access token with write access (instead of HF_TOKEN / the token file)\n"
    "  --dry-run               list what would be sent and why (nothing is created, sent or committed)\n"
    "  --quiet                 no progress bar (it is shown only when stderr is a terminal anyway)\n"
    "  --json                  one JSON document on stdout: repo, commit, per-file actions\n"
    "\n"
    "Errors: 401 (no or bad token), 403 (the token cannot write there), 409 (the branch moved during\n"
    "the upload: run again), 413 (a request too large) say what to do. Retries on 408/429/5xx and\n"
    "broken connections (MP_HUB_MAX_ATTEMPTS, default 5). Environment as `mlxport download`.\n"
    "See docs/upload.md.\n";

static void progress_bar(void *user, int64_t done, int64_t total, size_t files_done, size_t files_total) {
  (void)user;
  char a[32], b[32];
  int pct = total > 0 ? (int)(done * 100 / total) : 100;
  if (pct > 100) pct = 100;
  char bar[31];
  int fill = pct * 30 / 100;
  for (int i = 0; i < 30; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[30] = 0;
  fprintf(stderr, "\rupload [%s] %3d%% %s / %s  %zu/%zu LFS files ", bar, pct,
          mp_cli_human_bytes((double)done, a, sizeof a), mp_cli_human_bytes((double)total, b, sizeof b), files_done,
          files_total);
  fflush(stderr);
}

static const char *file_action(const mp_up_file *f, int dry) {
  if (f->ignored) return "ignored";
  if (!f->changed) return "unchanged";
  if (!f->lfs) return dry ? "would-commit" : "committed";
  if (f->on_server) return dry ? "would-commit" : "already-on-server";
  return dry ? "would-upload" : "uploaded";
}

static const char *file_why(const mp_up_file *f) {
  if (f->ignored) return "the repo's .gitignore ignores it";
  if (!f->changed) return "the repo has this exact file";
  if (f->remote_oid[0]) return "changed";
  return "new";
}

int mp_cmd_upload(int argc, char **argv) {
  mp_hub_upload_request rq = {0};
  int json = 0, quiet = 0;
  const char *v;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(k_help, stdout);
      return MP_EXIT_OK;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      quiet = 1;
    } else if (!strcmp(a, "--private")) {
      rq.private_ = 1;
    } else if (!strcmp(a, "--create-pr")) {
      rq.create_pr = 1;
    } else if (!strcmp(a, "--dry-run")) {
      rq.dry_run = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--revision", &v)) {
      if (!v) return MP_EXIT_USAGE;
      rq.revision = v;
    } else if (mp_cli_opt(argc, argv, &i, "--commit-message", &v)) {
      if (!v) return MP_EXIT_USAGE;
      rq.commit_message = v;
    } else if (mp_cli_opt(argc, argv, &i, "--commit-description", &v)) {
      if (!v) return MP_EXIT_USAGE;
      rq.commit_description = v;
    } else if (mp_cli_opt(argc, argv, &i, "--repo-type", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (strcmp(v, "model") && strcmp(v, "dataset"))
        return mp_cli_usage_error("upload", "--repo-type must be model or dataset, got '%s'", v);
      rq.repo_type = v;
    } else if (mp_cli_opt(argc, argv, &i, "--token", &v)) {
      if (!v) return MP_EXIT_USAGE;
      setenv("HF_TOKEN", v, 1);
    } else if (a[0] == '-' && a[1]) {
      return mp_cli_usage_error("upload", "unknown option '%s'", a);
    } else if (!rq.folder) {
      rq.folder = a;
    } else if (!rq.repo_id) {
      rq.repo_id = a;
    } else {
      return mp_cli_usage_error("upload", "unexpected argument '%s'", a);
    }
  }
  if (!rq.folder || !rq.repo_id) return mp_cli_usage_error("upload", "expected MLX_FOLDER and REPO_ID");
  if (!mp_hub_valid_repo_id(rq.repo_id))
    return mp_cli_usage_error("upload", "'%s' is not a repo id (org/name)", rq.repo_id);
  int bar = !quiet && !json && !rq.dry_run && isatty(2);
  if (bar) rq.progress = progress_bar;
  mp_hub_upload_result res;
  mp_status st = mp_hub_upload(&rq, &res);
  if (bar && res.n_lfs_uploaded) fputs("\n", stderr);
  if (st) {
    mp_hub_upload_result_free(&res);
    return mp_cli_fail("upload", st);
  }
  const char *rev = rq.revision ? rq.revision : "main";
  if (json) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_puts(&sb, "{\"repo_id\": ");
    mp_sb_json_str(&sb, rq.repo_id, strlen(rq.repo_id));
    mp_sb_printf(&sb, ", \"repo_type\": \"%s\", \"revision\": ", rq.repo_type ? rq.repo_type : "model");
    mp_sb_json_str(&sb, rev, strlen(rev));
    mp_sb_printf(&sb, ", \"dry_run\": %s, \"repo_existed\": %s, \"created_repo\": %s, \"committed\": %s",
                 rq.dry_run ? "true" : "false",
                 res.repo_existed < 0 ? "null"
                 : res.repo_existed   ? "true"
                                      : "false",
                 res.created_repo ? "true" : "false", res.committed ? "true" : "false");
    mp_sb_puts(&sb, ", \"parent_commit\": ");
    if (res.parent && *res.parent)
      mp_sb_json_str(&sb, res.parent, strlen(res.parent));
    else
      mp_sb_puts(&sb, "null");
    mp_sb_puts(&sb, ", \"commit\": ");
    if (res.commit)
      mp_sb_json_str(&sb, res.commit, strlen(res.commit));
    else
      mp_sb_puts(&sb, "null");
    mp_sb_puts(&sb, ", \"commit_url\": ");
    if (res.commit_url)
      mp_sb_json_str(&sb, res.commit_url, strlen(res.commit_url));
    else
      mp_sb_puts(&sb, "null");
    mp_sb_puts(&sb, ", \"pr_url\": ");
    if (res.pr_url)
      mp_sb_json_str(&sb, res.pr_url, strlen(res.pr_url));
    else
      mp_sb_puts(&sb, "null");
    mp_sb_printf(&sb,
                 ", \"files_changed\": %zu, \"lfs_uploaded\": %zu, \"lfs_already_on_server\": %zu, "
                 "\"bytes_uploaded\": %lld, \"files\": [",
                 res.n_changed, res.n_lfs_uploaded, res.n_lfs_present, (long long)res.bytes_uploaded);
    for (size_t i = 0; i < res.n_files; i++) {
      const mp_up_file *f = &res.files[i];
      mp_sb_puts(&sb, i ? ", {\"path\": " : "{\"path\": ");
      mp_sb_json_str(&sb, f->path, strlen(f->path));
      mp_sb_printf(&sb, ", \"size\": %lld, \"mode\": \"%s\", \"sha256\": \"%s\", \"action\": \"%s\", \"why\": \"%s\"}",
                   (long long)f->size, f->lfs ? "lfs" : "regular", f->sha256, file_action(f, rq.dry_run), file_why(f));
    }
    mp_sb_puts(&sb, "]}\n");
    fputs(sb.buf ? sb.buf : "", stdout);
    mp_sb_free(&sb);
  } else {
    char hb[32];
    if (rq.dry_run) {
      printf("dry run: %s %s (%s), branch %s%s: nothing was created, sent or committed\n",
             res.repo_existed == 0 ? "would create" : "would update", rq.repo_id, rq.repo_type ? rq.repo_type : "model",
             rev, rq.create_pr ? " (as a pull request)" : "");
      for (size_t i = 0; i < res.n_files; i++) {
        const mp_up_file *f = &res.files[i];
        printf("  %-13s %-8s %10s  %s  (%s)\n", file_action(f, 1), f->lfs ? "lfs" : "regular",
               mp_cli_human_bytes((double)f->size, hb, sizeof hb), f->path, file_why(f));
      }
    } else if (!res.committed) {
      printf("%s is up to date at %s (%zu files unchanged; nothing sent, no commit)\n", rq.repo_id,
             res.commit ? res.commit : "?", res.n_files);
    } else {
      printf("%s: committed %s to %s (%zu files changed; %zu LFS files uploaded, %s; %zu already on the server)\n",
             rq.repo_id, res.commit, rq.create_pr ? "a pull request" : rev, res.n_changed, res.n_lfs_uploaded,
             mp_cli_human_bytes((double)res.bytes_uploaded, hb, sizeof hb), res.n_lfs_present);
      if (res.pr_url)
        printf("pull request: %s\n", res.pr_url);
      else if (res.commit_url)
        printf("%s\n", res.commit_url);
    }
  }
  mp_hub_upload_result_free(&res);
  return MP_EXIT_OK;
}
