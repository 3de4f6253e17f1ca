/* mlxport download: fetch a model or dataset repo (or some of its files) from the Hugging Face
 * Hub into the shared cache, like `hf download`; prints the snapshot folder. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "hub/hub.h"

const char mp_cmd_download_summary[] = "download a model or dataset repo from the Hugging Face Hub into the cache";

static const char *k_help =
    "usage: mlxport download REPO_ID [FILES...] [--revision R] [--repo-type model|dataset]\n"
    "                        [--include GLOB]... [--exclude GLOB]... [--local-dir DIR] [--max-workers N]\n"
    "                        [--cache-dir DIR] [--token T] [--force-download] [--quiet] [--json]\n"
    "\n"
    "Downloads a repo snapshot from the Hugging Face Hub (or the server HF_ENDPOINT names) into the\n"
    "Hugging Face cache that huggingface_hub, transformers and `hf download` share, and prints the\n"
    "snapshot folder (the file's path when exactly one file is asked for). Files already in the\n"
    "cache are not downloaded again; interrupted files resume. LFS files are checked against their\n"
    "sha256. Semantics of `hf download` where they overlap. A repo id given to inspect, convert,\n"
    "embed, classify, eval, ... is downloaded the same way when it is not cached.\n"
    "\n"
    "  REPO_ID            org/name (or name)\n"
    "  FILES...           only these files (paths inside the repo); default: the whole repo\n"
    "  --revision R       branch, tag or commit (default main)\n"
    "  --repo-type T      model (default) or dataset\n"
    "  --include GLOB     only files matching the pattern (fnmatch; '*' crosses '/'); repeatable\n"
    "  --exclude GLOB     skip files matching the pattern; repeatable\n"
    "  --local-dir DIR    also copy the files into DIR (with .cache/huggingface/download metadata)\n"
    "                     and print DIR\n"
    "  --max-workers N    files downloaded in parallel (default 8)\n"
    "  --cache-dir DIR    the hub cache to use (instead of HF_HUB_CACHE / HF_HOME/hub)\n"
    "  --token T          access token (instead of HF_TOKEN / the token file)\n"
    "  --force-download   download the files again even when they are cached\n"
    "  --quiet            no progress bar (it is shown only when stderr is a terminal anyway)\n"
    "  --json             one JSON document on stdout: repo, commit, path, file counts\n"
    "\n"
    "Environment (as huggingface_hub reads it): HF_ENDPOINT, HF_TOKEN / HUGGING_FACE_HUB_TOKEN /\n"
    "$HF_HOME/token, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE=1 (cache only), HF_HUB_ETAG_TIMEOUT,\n"
    "HF_HUB_DOWNLOAD_TIMEOUT (seconds without data, default 10); MP_HUB_MAX_ATTEMPTS (default 5).\n"
    "See docs/hub.md.\n";

static void progress_bar(void *user, int64_t done, int64_t total, size_t files_done, size_t files_total) {
  (void)user;
  char a[32], b[32];
  if (total > 0) {
    int pct = (int)(done * 100 / (total ? total : 1));
    if (pct > 100) pct = 100;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r[%s] %3d%% %s / %s  %zu/%zu files ", bar, pct, mp_cli_human_bytes((double)done, a, sizeof a),
            mp_cli_human_bytes((double)total, b, sizeof b), files_done, files_total);
  } else {
    fprintf(stderr, "\r%s  %zu/%zu files ", mp_cli_human_bytes((double)done, a, sizeof a), files_done, files_total);
  }
  fflush(stderr);
}

static int push(const char ***arr, size_t *n, const char *v) {
  const char **na = realloc((void *)*arr, (*n + 1) * sizeof *na);
  if (!na) return -1;
  na[(*n)++] = v;
  *arr = na;
  return 0;
}

int mp_cmd_download(int argc, char **argv) {
  mp_hub_request rq = {0};
  const char **files = NULL, **inc = NULL, **exc = NULL;
  size_t nf = 0, ni = 0, ne = 0;
  int json = 0, quiet = 0, rc = MP_EXIT_OK;
  const char *v;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(k_help, stdout);
      goto done;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      quiet = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--revision", &v)) {
      if (!v) goto usage;
      rq.revision = v;
    } else if (mp_cli_opt(argc, argv, &i, "--repo-type", &v)) {
      if (!v) goto usage;
      if (strcmp(v, "model") && strcmp(v, "dataset")) {
        rc = mp_cli_usage_error("download", "--repo-type must be model or dataset, got '%s'", v);
        goto done;
      }
      rq.repo_type = v;
    } else if (mp_cli_opt(argc, argv, &i, "--include", &v)) {
      if (!v || push(&inc, &ni, v)) goto usage;
    } else if (mp_cli_opt(argc, argv, &i, "--exclude", &v)) {
      if (!v || push(&exc, &ne, v)) goto usage;
    } else if (mp_cli_opt(argc, argv, &i, "--local-dir", &v)) {
      if (!v) goto usage;
      rq.local_dir = v;
    } else if (!strcmp(a, "--force-download")) {
      rq.force = 1;
    } else if (mp_cli_opt(argc, argv, &i, "--cache-dir", &v)) {
      if (!v) goto usage;
      setenv("HF_HUB_CACHE", v, 1); /* read by the client like huggingface_hub's cache_dir */
    } else if (mp_cli_opt(argc, argv, &i, "--token", &v)) {
      if (!v) goto usage;
      setenv("HF_TOKEN", v, 1);
    } else if (mp_cli_opt(argc, argv, &i, "--max-workers", &v)) {
      long long w;
      if (!v || mp_cli_opt_int("download", "--max-workers", v, 1, 64, &w)) goto usage;
      rq.workers = (int)w;
    } else if (a[0] == '-' && a[1]) {
      rc = mp_cli_usage_error("download", "unknown option '%s'", a);
      goto done;
    } else if (!rq.repo_id) {
      rq.repo_id = a;
    } else if (push(&files, &nf, a)) {
      goto usage;
    }
  }
  if (!rq.repo_id) {
    rc = mp_cli_usage_error("download", "missing REPO_ID");
    goto done;
  }
  if (!mp_hub_valid_repo_id(rq.repo_id)) {
    rc = mp_cli_usage_error("download", "'%s' is not a repo id (org/name)", rq.repo_id);
    goto done;
  }
  if (nf && (ni || ne)) {
    rc = mp_cli_usage_error("download", "FILES and --include/--exclude cannot be combined");
    goto done;
  }
  rq.files = files;
  rq.n_files = nf;
  rq.include = inc;
  rq.n_include = ni;
  rq.exclude = exc;
  rq.n_exclude = ne;
  int bar = !quiet && !json && isatty(2);
  if (bar) rq.progress = progress_bar;
  mp_hub_result res;
  mp_status st = mp_hub_download(&rq, &res);
  if (bar) fputs("\n", stderr);
  if (st) {
    rc = mp_cli_fail("download", st);
    goto done;
  }
  if (json) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_puts(&sb, "{\"repo_id\": ");
    mp_sb_json_str(&sb, rq.repo_id, strlen(rq.repo_id));
    mp_sb_printf(&sb, ", \"repo_type\": \"%s\", \"revision\": ", rq.repo_type ? rq.repo_type : "model");
    const char *rev = rq.revision ? rq.revision : "main";
    mp_sb_json_str(&sb, rev, strlen(rev));
    mp_sb_printf(&sb, ", \"commit\": \"%s\", \"path\": ", res.commit);
    mp_sb_json_str(&sb, res.path, strlen(res.path));
    if (nf == 1 && !rq.local_dir) { /* one file: also its path, as hf download prints it */
      mp_sb fp;
      mp_sb_init(&fp);
      mp_sb_printf(&fp, "%s/%s", res.path, files[0]);
      mp_sb_puts(&sb, ", \"file_path\": ");
      mp_sb_json_str(&sb, fp.buf ? fp.buf : "", fp.len);
      mp_sb_free(&fp);
    }
    mp_sb_printf(&sb, ", \"files\": %zu, \"downloaded\": %zu, \"bytes_downloaded\": %lld, \"cache_only\": %s}\n",
                 res.n_files, res.n_downloaded, (long long)res.bytes_downloaded,
                 res.used_cache_only ? "true" : "false");
    fputs(sb.buf ? sb.buf : "", stdout);
    mp_sb_free(&sb);
  } else if (nf == 1) {
    printf("%s/%s\n", res.path, files[0]); /* hf download prints the file for one file */
  } else {
    printf("%s\n", res.path);
  }
  mp_hub_result_free(&res);
  goto done;
usage:
  rc = MP_EXIT_USAGE;
done:
  free((void *)files);
  free((void *)inc);
  free((void *)exc);
  return rc;
}
