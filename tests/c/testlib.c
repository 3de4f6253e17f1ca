/* The test harness behind testlib.h: check counts, skip records, test data, temporary folders. */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"

int mp_test_failures;
int mp_test_checks;
static char g_tmp[512];
static char g_reason[512];
static int g_skipped;

extern char *program_invocation_short_name;

/* Appends "c/<test>\t<function>\t<reason>" to $MP_SKIP_DIR/c_<test>.tsv (the summary's input). */
static void record_skip(const char *fn, const char *why) {
  const char *d = getenv("MP_SKIP_DIR");
  if (!d || !*d) return;
  mp_mkdirs(d);
  char path[1024];
  snprintf(path, sizeof path, "%s/c_%s.tsv", d, program_invocation_short_name);
  FILE *f = fopen(path, "a");
  if (!f) return;
  fprintf(f, "c/%s\t%s\t", program_invocation_short_name, fn);
  for (const char *p = why; *p; p++)
    fputc(*p == '\t' || *p == '\n' ? ' ' : *p, f);
  fputc('\n', f);
  fclose(f);
}

void mp_test_skip_reason(const char *why) { snprintf(g_reason, sizeof g_reason, "%s", why); }

void mp_test_ran(const char *fn, int failed, int checked) {
  if (failed)
    fprintf(stderr, "FAIL %s\n", fn);
  else if (checked)
    fprintf(stderr, "ok   %s\n", fn);
  else {
    const char *why = g_reason[0] ? g_reason : "no checks ran";
    fprintf(stderr, "SKIP %s: %s\n", fn, why);
    record_skip(fn, why);
    g_skipped++;
  }
  g_reason[0] = 0;
}

int mp_test_done(void) {
  fprintf(stderr, "%d checks, %d failures, %d functions skipped\n", mp_test_checks, mp_test_failures, g_skipped);
  if (g_tmp[0] && mp_test_failures == 0) mp_remove_tree(g_tmp);
  if (mp_test_checks == 0) {
    if (g_skipped) return 77;
    fprintf(stderr, "no checks ran: treating as failure\n");
    return 1;
  }
  return mp_test_failures ? 1 : 0;
}

const char *mp_test_source_dir(void) {
  const char *s = getenv("MP_SOURCE_DIR");
  return s ? s : ".";
}

const char *mp_test_use_cache(void) {
  static char cache[4096], hub[4200];
  const char *c = getenv("MP_CACHE");
  if (c && *c)
    snprintf(cache, sizeof cache, "%s", c);
  else
    snprintf(cache, sizeof cache, "%s/.cache", mp_test_source_dir());
  snprintf(hub, sizeof hub, "%s/huggingface/hub", cache);
  if (!getenv("HF_HUB_CACHE")) setenv("HF_HUB_CACHE", hub, 1);
  setenv("HF_HUB_OFFLINE", "1", 1);
  return cache;
}

const char *mp_test_shared_dir(void) {
  static char buf[1024];
  if (buf[0]) return buf;
  const char *s = getenv("MP_SHARED_DIR");
  if (s && *s)
    snprintf(buf, sizeof buf, "%s", s);
  else {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/test-data.sh' locate", mp_test_source_dir());
    FILE *p = popen(cmd, "r");
    if (p) {
      if (!fgets(buf, sizeof buf, p)) buf[0] = 0;
      buf[strcspn(buf, "\n")] = 0;
      pclose(p);
    }
  }
  if (!buf[0] || !mp_is_dir(buf)) {
    fprintf(stderr,
            "no third-party test data folder%s%s: set MLXPORT_TEST_DATA, put ../shared beside the checkout, "
            "or run `make test` online to fetch it (docs/testing.md)\n",
            buf[0] ? " at " : "", buf);
    exit(1);
  }
  return buf;
}

const char *mp_test_tmpdir(void) {
  if (!g_tmp[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/mp-test-XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(g_tmp)) {
      perror("mkdtemp");
      exit(1);
    }
  }
  return g_tmp;
}

void mp_test_skip(const char *why) {
  fprintf(stderr, "SKIPPED: %s\n", why);
  record_skip("(whole test)", why);
  exit(77);
}

void mp_test_write(const char *root, const char *rel, const char *content) {
  char *p = mp_path_join(root, rel);
  char *d = mp_path_dirname(p);
  mp_mkdirs(d);
  mp_write_file_atomic(p, content, strlen(content));
  free(d);
  free(p);
}
