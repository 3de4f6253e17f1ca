/* The embedded demo set as the last place mp_data_find searches (src/eval/data_dirs.c), and
 * mp_data_find_is_fallback. The checkout is found from /proc/self/exe exactly as for
 * build/mlxport: this test binary sits in the build folder too. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "eval/data_dirs.h"
#include "testlib.h"

#define RUN_ARG(fn, arg)                                                                                               \
  do {                                                                                                                 \
    int before_ = mp_test_failures;                                                                                    \
    fn(arg);                                                                                                           \
    fprintf(stderr, "%s %s\n", mp_test_failures == before_ ? "ok  " : "FAIL", #fn);                                    \
  } while (0)

static char demo_real[PATH_MAX]; /* realpath of <checkout>/data/demo, "" when not derivable */

static void test_fallback_predicate(void) {
  CHECK(mp_data_find_is_fallback("/x/mlxport/data/demo/stsb/dev.tsv") == 1);
  CHECK(mp_data_find_is_fallback("data/demo/sst2/dev.tsv") == 1);
  CHECK(mp_data_find_is_fallback("/work/shared/datasets/stsb/dev.tsv") == 0);
  CHECK(mp_data_find_is_fallback("/x/data/demonstration/stsb/dev.tsv") == 0);
  CHECK(mp_data_find_is_fallback("/x/mydata/demo/stsb/dev.tsv") == 0);
  CHECK(mp_data_find_is_fallback("") == 0);
  CHECK(mp_data_find_is_fallback(NULL) == 0);
}

static int is_demo_dir(const char *d) {
  char r[PATH_MAX];
  return demo_real[0] && realpath(d, r) && !strcmp(r, demo_real);
}

static void test_demo_is_last(void) {
  REQUIRE(demo_real[0]);
  char dirs[8][1024];
  size_t n = mp_data_dirs("/nonexistent-explicit", dirs, 8);
  REQUIRE(n >= 2);
  CHECK_STREQ(dirs[0], "/nonexistent-explicit");
  CHECKF(is_demo_dir(dirs[n - 1]), "last folder is %s", dirs[n - 1]);
  for (size_t i = 0; i + 1 < n; i++)
    CHECKF(!is_demo_dir(dirs[i]), "demo folder at %zu of %zu", i, n);
  /* many MLXPORT_DATA folders: the demo set keeps its (last) slot */
  setenv("MLXPORT_DATA", "/a:/b:/c:/d:/e:/f:/g:/h:/i:/j", 1);
  n = mp_data_dirs(NULL, dirs, 8);
  CHECK(n == 8);
  CHECK_STREQ(dirs[0], "/a");
  CHECKF(is_demo_dir(dirs[n - 1]), "last folder is %s", dirs[n - 1]);
  n = mp_data_dirs("/x", dirs, 1);
  CHECK(n == 1 && is_demo_dir(dirs[0]));
  unsetenv("MLXPORT_DATA");
  /* the test data rule (docs/testing.md): $MLXPORT_TEST_DATA before ../shared, the fetched copy
   * in $MP_CACHE/test-data after it, the demo set last */
  char *saved_td = getenv("MLXPORT_TEST_DATA") ? strdup(getenv("MLXPORT_TEST_DATA")) : NULL;
  char *saved_mc = getenv("MP_CACHE") ? strdup(getenv("MP_CACHE")) : NULL;
  setenv("MLXPORT_TEST_DATA", "/td", 1);
  setenv("MP_CACHE", "/mc", 1);
  char big[12][1024];
  n = mp_data_dirs(NULL, big, 12);
  long td = -1, sh = -1, mc = -1;
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(big[i], "/td/datasets")) td = (long)i;
    if (strstr(big[i], "/../shared/datasets") && sh < 0) sh = (long)i;
    if (!strcmp(big[i], "/mc/test-data/datasets")) mc = (long)i;
  }
  CHECKF(td >= 0 && sh > td && mc > sh && mc < (long)n - 1, "order td %ld shared %ld cache %ld of %zu", td, sh, mc, n);
  CHECK(is_demo_dir(big[n - 1]));
  if (saved_td)
    setenv("MLXPORT_TEST_DATA", saved_td, 1);
  else
    unsetenv("MLXPORT_TEST_DATA");
  if (saved_mc)
    setenv("MP_CACHE", saved_mc, 1);
  else
    unsetenv("MP_CACHE");
  free(saved_td);
  free(saved_mc);
}

/* Which of the searched folders holds `rel` first: its index, or -1. */
static long first_holding(const char *explicit_dir, const char *rel, char dirs[8][1024], size_t *n) {
  *n = mp_data_dirs(explicit_dir, dirs, 8);
  for (size_t i = 0; i < *n; i++) {
    char *f = mp_path_join(dirs[i], rel);
    int ok = f && mp_is_file(f);
    free(f);
    if (ok) return (long)i;
  }
  return -1;
}

/* Here (the real checkout): real data, when present anywhere searched, wins over the demo set. */
static void test_find_prefers_real_data(void) {
  REQUIRE(demo_real[0]);
  static const char *const keys[] = {"mnli", "stsb", "sst2"};
  for (size_t k = 0; k < 3; k++) {
    char dirs[8][1024];
    size_t n;
    long first = first_holding(NULL, mp_data_relpath(keys[k]), dirs, &n);
    REQUIRE(first >= 0); /* at least the demo set holds it */
    char *p = NULL;
    CHECK_OK(mp_data_find(keys[k], NULL, &p));
    REQUIRE(p);
    int demo_first = is_demo_dir(dirs[first]);
    CHECKF(mp_data_find_is_fallback(p) == demo_first, "%s -> %s (first holder %s)", keys[k], p, dirs[first]);
    free(p);
  }
  /* the demo folder itself as --data-dir: the returned path is flagged */
  char *p = NULL;
  CHECK_OK(mp_data_find("stsb", demo_real, &p));
  CHECK(p && mp_data_find_is_fallback(p));
  free(p);
}

/* In a fake checkout with no shared folder beside it (the child process, see main): the demo set
 * is used for its three keys, flagged as fallback, and other keys stay "not available". */
static void child_checks(void) {
  static const char *const keys[] = {"mnli", "stsb", "sst2"};
  for (size_t k = 0; k < 3; k++) {
    char *p = NULL;
    CHECK_OK(mp_data_find(keys[k], "/nonexistent-explicit", &p));
    CHECKF(p && mp_data_find_is_fallback(p), "%s -> %s", keys[k], p ? p : "(none)");
    CHECKF(p && strstr(p, "/fake/data/demo/"), "%s -> %s", keys[k], p ? p : "(none)");
    free(p);
  }
  char *p = NULL;
  CHECK(mp_data_find("qnli", NULL, &p) == MP_ERR_NOT_FOUND && !p);
  CHECKF(strstr(mp_last_error(), "/fake/data/demo/qnli/dev.tsv") != NULL, "%s", mp_last_error());
}

static void test_fallback_in_fresh_checkout(const char *self) {
  REQUIRE(demo_real[0]);
  /* <tmp>/fake/build/<this test>, <tmp>/fake/data/demo -> the real demo set; cwd <tmp>/fake/build
   * so ../shared/datasets and shared/datasets do not exist either */
  const char *tmp = mp_test_tmpdir();
  char bin_dir[PATH_MAX], data_dir[PATH_MAX], bin[PATH_MAX + 32], link[PATH_MAX + 32];
  snprintf(bin_dir, sizeof bin_dir, "%s/fake/build", tmp);
  snprintf(data_dir, sizeof data_dir, "%s/fake/data", tmp);
  CHECK_OK(mp_mkdirs(bin_dir));
  CHECK_OK(mp_mkdirs(data_dir));
  snprintf(bin, sizeof bin, "%s/child", bin_dir);
  snprintf(link, sizeof link, "%s/demo", data_dir);
  CHECK_OK(mp_copy_file(self, bin));
  REQUIRE(chmod(bin, 0755) == 0);
  REQUIRE(symlink(demo_real, link) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (chdir(bin_dir) != 0) _exit(126);
    unsetenv("MLXPORT_DATA");
    execl(bin, bin, "--child", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--child")) {
    RUN(child_checks);
    return mp_test_failures ? 1 : 0;
  }
  /* <checkout>/data/demo when this binary is <checkout>/<build>/test_...; otherwise (a build
   * folder outside the checkout) the location checks cannot be made */
  const char *src = mp_test_source_dir();
  const char *build = getenv("MP_BUILD_DIR");
  char a[PATH_MAX], b[PATH_MAX];
  char *parent = build ? mp_path_dirname(build) : NULL;
  if (src && parent && realpath(src, a) && realpath(parent, b) && !strcmp(a, b)) {
    char *d = mp_path_join(a, "data/demo");
    if (d && !realpath(d, demo_real)) demo_real[0] = 0;
    free(d);
  }
  free(parent);
  RUN(test_fallback_predicate);
  if (!demo_real[0]) mp_test_skip("build folder is not directly inside the checkout: demo location not derivable");
  RUN(test_demo_is_last);
  RUN(test_find_prefers_real_data);
  char self[PATH_MAX];
  ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
  if (l > 0) {
    self[l] = 0;
    RUN_ARG(test_fallback_in_fresh_checkout, self);
  }
  return mp_test_done();
}
