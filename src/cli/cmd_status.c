/* mlxport status: what ran in a work folder, what failed and why, what was skipped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "pipeline/pipeline.h"

const char mp_cmd_status_summary[] = "show the jobs of a pipeline work folder (done, failed and why, skipped)";

static const char *k_help = "usage: mlxport status [--workdir DIR] [--json]\n"
                            "\n"
                            "Lists every job recorded in the work folder (jobs/*.json) with its state, duration and\n"
                            "reason, and whether a pipeline currently holds the folder's lock. A job recorded as\n"
                            "running while no pipeline holds the lock was interrupted (its process died, e.g.\n"
                            "kill -9): it shows as \"interrupted\"; the next pipeline run redoes it.\n"
                            "An evaluation on a GPU also shows its device and estimated GPU memory\n"
                            "(\"device\", \"est_gpu_mb\" in --json).\n";

/* 1 when a pipeline holds the work folder's lock (pipeline.c take_lock): a shared lock cannot be
 * taken then. Taken and released at once. */
static int pipeline_running(const char *wd) {
  char *lp = mp_path_join(wd, ".lock");
  int fd = lp ? open(lp, O_RDONLY | O_CLOEXEC) : -1;
  free(lp);
  if (fd < 0) return 0;
  int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd); /* releases the shared lock if it was taken */
  return held;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int mp_cmd_status(int argc, char **argv) {
  const char *workdir = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(k_help, stdout);
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--workdir", &v)) {
      if (!v) return MP_EXIT_USAGE;
      workdir = v;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else {
      return mp_cli_usage_error("status", "unknown option '%s'", argv[i]);
    }
  }
  char *wd = workdir ? strdup(workdir) : mp_pipeline_default_workdir();
  char *jd = mp_path_join(wd, "jobs");
  DIR *d = jd ? opendir(jd) : NULL;
  if (!d) {
    mp_status s = mp_err(MP_ERR_NOT_FOUND, "%s: no pipeline has run in this work folder (no jobs/ folder)", wd);
    free(wd), free(jd);
    return mp_cli_fail("status", s);
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".json")) continue;
    char **nn = realloc(names, (n + 1) * sizeof *nn);
    if (!nn) break;
    names = nn;
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_sb sb;
  mp_sb_init(&sb);
  int counts[7] = {0};
  static const char *states[] = {"pending", "running", "done", "gate failed", "failed", "skipped", "interrupted"};
  int live = pipeline_running(wd);
  if (json)
    mp_sb_puts(&sb, "{\"workdir\":"), mp_sb_json_str(&sb, wd, strlen(wd)),
        mp_sb_printf(&sb, ",\"pipeline_running\":%s,\"jobs\":[", live ? "true" : "false");
  else
    mp_sb_printf(&sb, "work folder %s (%s)\n", wd, live ? "a pipeline is running on it" : "no pipeline running");
  for (size_t i = 0; i < n; i++) {
    char *p = mp_path_join(jd, names[i]);
    mp_json *j;
    if (p && mp_json_parse_file(p, &a, &j) == MP_OK) {
      const char *st = mp_json_get_str(j, "state", "?");
      if (!live && !strcmp(st, "running")) st = "interrupted";
      for (int k = 0; k < 7; k++)
        if (!strcmp(st, states[k])) counts[k]++;
      if (json) {
        const char *id = mp_json_get_str(j, "id", ""), *reason = mp_json_get_str(j, "reason", "");
        mp_sb_puts(&sb, i ? ",{\"id\":" : "{\"id\":");
        mp_sb_json_str(&sb, id, strlen(id));
        mp_sb_puts(&sb, ",\"state\":");
        mp_sb_json_str(&sb, st, strlen(st));
        mp_sb_puts(&sb, ",\"reason\":");
        mp_sb_json_str(&sb, reason, strlen(reason));
        const char *dev = mp_json_get_str(j, "device", NULL);
        if (dev) { /* an evaluation on a GPU: its device and estimated GPU memory (null = unknown) */
          mp_sb_puts(&sb, ",\"device\":");
          mp_sb_json_str(&sb, dev, strlen(dev));
          double g = mp_json_get_num(j, "est_gpu_mb", 0);
          if (g > 0)
            mp_sb_printf(&sb, ",\"est_gpu_mb\":%.0f", g);
          else
            mp_sb_puts(&sb, ",\"est_gpu_mb\":null");
        }
        mp_sb_printf(&sb, ",\"seconds\":%.3f}", mp_json_get_num(j, "seconds", 0));
      } else {
        const char *dev = mp_json_get_str(j, "device", NULL);
        char gpu[96] = "";
        double g = mp_json_get_num(j, "est_gpu_mb", 0);
        if (dev && g > 0)
          snprintf(gpu, sizeof gpu, "[%s, GPU ~%.0f MB] ", dev, g);
        else if (dev)
          snprintf(gpu, sizeof gpu, "[%s] ", dev);
        mp_sb_printf(&sb, "  %-11s %-55s %7.1fs  %s%s\n", st, mp_json_get_str(j, "id", ""),
                     mp_json_get_num(j, "seconds", 0), gpu, mp_json_get_str(j, "reason", ""));
      }
    } else {
      mp_err_clear();
    }
    free(p);
    free(names[i]);
  }
  free(names);
  if (json)
    mp_sb_printf(&sb,
                 "],\"done\":%d,\"gate_failed\":%d,\"failed\":%d,\"skipped\":%d,\"running\":%d,\"interrupted\":%d}\n",
                 counts[2], counts[3], counts[4], counts[5], counts[1], counts[6]);
  else
    mp_sb_printf(&sb, "%zu jobs: %d done, %d gate failed, %d failed, %d skipped, %d running, %d interrupted\n", n,
                 counts[2], counts[3], counts[4], counts[5], counts[1], counts[6]);
  fwrite(sb.buf, 1, sb.len, stdout);
  mp_sb_free(&sb);
  mp_arena_free(&a);
  free(jd), free(wd);
  return MP_EXIT_OK;
}
