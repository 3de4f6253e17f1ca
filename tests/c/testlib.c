#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"

int mp_test_failures;
int mp_test_checks;
static char g_tmp[512];

int mp_test_done(void) {
  fprintf(stderr, "%d checks, %d failures\n", mp_test_checks, mp_test_failures);
  if (g_tmp[0] && mp_test_failures == 0) mp_remove_tree(g_tmp);
  if (mp_test_checks == 0) {
    fprintf(stderr, "no checks ran: treating as failure\n");
    return 1;
  }
  return mp_test_failures ? 1 : 0;
}

const char *mp_test_source_dir(void) {
  const char *s = getenv("MP_SOURCE_DIR");
  return s ? s : ".";
}

const char *mp_test_shared_dir(void) {
  static char buf[1024];
  const char *s = getenv("MP_SHARED_DIR");
  if (s) snprintf(buf, sizeof buf, "%s", s);
  else snprintf(buf, sizeof buf, "%s/../shared", mp_test_source_dir());
  return mp_is_dir(buf) ? buf : NULL;
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
