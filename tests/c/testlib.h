/* Minimal test harness for tests/c/test_*.c. Each file is one executable and one CTest test.
 * CHECK records a failure and continues; REQUIRE stops the test function. No silent skips
 * (docs/testing.md): a test function that runs no check is reported as SKIP, with the reason given
 * to mp_test_skip_reason (or "no checks ran"), and written to $MP_SKIP_DIR for the end-of-run
 * summary; a file in which nothing ran a check exits 77, which CTest reports as skipped. */
#ifndef MP_TESTLIB_H
#define MP_TESTLIB_H
#include <math.h>
#include <stdio.h>
#include <string.h>

extern int mp_test_failures;
extern int mp_test_checks;

#define CHECK(cond)                                                                                                    \
  do {                                                                                                                 \
    mp_test_checks++;                                                                                                  \
    if (!(cond)) {                                                                                                     \
      mp_test_failures++;                                                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                                         \
    }                                                                                                                  \
  } while (0)
#define CHECKF(cond, ...)                                                                                              \
  do {                                                                                                                 \
    mp_test_checks++;                                                                                                  \
    if (!(cond)) {                                                                                                     \
      mp_test_failures++;                                                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                                         \
      fprintf(stderr, __VA_ARGS__);                                                                                    \
      fputc('\n', stderr);                                                                                             \
    }                                                                                                                  \
  } while (0)
#define REQUIRE(cond)                                                                                                  \
  do {                                                                                                                 \
    mp_test_checks++;                                                                                                  \
    if (!(cond)) {                                                                                                     \
      mp_test_failures++;                                                                                              \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);                                       \
      return;                                                                                                          \
    }                                                                                                                  \
  } while (0)
#define CHECK_OK(expr)                                                                                                 \
  do {                                                                                                                 \
    mp_status s_ = (expr);                                                                                             \
    mp_test_checks++;                                                                                                  \
    if (s_ != MP_OK) {                                                                                                 \
      mp_test_failures++;                                                                                              \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, mp_last_error());                           \
    }                                                                                                                  \
  } while (0)
#define CHECK_STREQ(a, b) CHECKF(strcmp((a), (b)) == 0, "'%s' != '%s'", (a), (b))

#define RUN(fn)                                                                                                        \
  do {                                                                                                                 \
    int before_ = mp_test_failures, checks_ = mp_test_checks;                                                          \
    fn();                                                                                                              \
    mp_test_ran(#fn, mp_test_failures != before_, mp_test_checks != checks_);                                          \
  } while (0)

/* RUN's report of one test function: "ok", "FAIL", or "SKIP <reason>" when it ran no check. */
void mp_test_ran(const char *fn, int failed, int checked);
/* The reason the current test function gives for running no check (printed and recorded). */
void mp_test_skip_reason(const char *why);

/* Exit status for main: 0 when all checks passed. */
int mp_test_done(void);
/* Source tree root (MP_SOURCE_DIR), and the third-party test data folder: MP_SHARED_DIR (CTest and
 * `make test` set it), else what `scripts/test-data.sh locate` finds. Never NULL: without test data
 * the test fails at once, saying how to provide it. */
const char *mp_test_source_dir(void);
const char *mp_test_shared_dir(void);
/* The project's model cache for tests that open real models: HF_HUB_CACHE (unless set) =
 * $MP_CACHE/huggingface/hub, MP_CACHE defaulting to <source>/.cache, and HF_HUB_OFFLINE=1.
 * Returns the cache folder. */
const char *mp_test_use_cache(void);
/* A fresh empty temporary folder for this test (removed by mp_test_done when all passed). */
const char *mp_test_tmpdir(void);
/* Writes root/rel (making its folders) with content; for building test folders. */
void mp_test_write(const char *root, const char *rel, const char *content);
/* Skips the whole test with a message (recorded; exit 77). */
void mp_test_skip(const char *why) __attribute__((noreturn));
#endif
