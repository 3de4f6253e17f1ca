/* Helpers every subcommand uses (cli.h): exit codes from a status, usage errors, option parsing,
 * colour on a TTY, human-readable sizes, stdin lines and TAB-separated pairs, the command line. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/strbuf.h"

int mp_cli_fail(const char *cmd, mp_status s) {
  const char *m = mp_last_error();
  fprintf(stderr, "mlxport %s: error: %s\n", cmd, (m && *m) ? m : mp_status_name(s));
  if (s == MP_OK) return MP_EXIT_OK;
  return s == MP_ERR_INVALID_ARG ? MP_EXIT_USAGE : MP_EXIT_ERROR;
}

int mp_cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "mlxport %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nrun 'mlxport %s --help' for usage\n", cmd);
  return MP_EXIT_USAGE;
}

int mp_cli_opt(int argc, char **argv, int *i, const char *name, const char **value) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') {
    *value = a + n + 1;
    return 1;
  }
  if (a[n] != 0) return 0;
  if (*i + 1 >= argc) {
    fprintf(stderr, "mlxport %s: option %s needs a value\n", argv[0], name);
    *value = NULL;
    return 1;
  }
  *value = argv[++*i];
  return 1;
}

int mp_cli_opt_int(const char *cmd, const char *opt, const char *v, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi) {
    mp_cli_usage_error(cmd, "%s expects an integer in [%lld, %lld], got '%s'", opt, lo, hi, v);
    return -1;
  }
  *out = x;
  return 0;
}

int mp_cli_color(void) { return isatty(2) && !getenv("NO_COLOR"); }

const char *mp_cli_human_bytes(double b, char *buf, size_t cap) {
  const char *u[] = {"B", "KB", "MB", "GB", "TB"};
  int i = 0;
  while (b >= 1000.0 && i < 4)
    b /= 1000.0, i++;
  snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
  return buf;
}

int mp_cli_read_lines(const char *cmd, FILE *f, char ***lines, size_t *n) {
  *lines = NULL;
  *n = 0;
  size_t cap = 0;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t r;
  while ((r = getline(&line, &lcap, f)) >= 0) {
    while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
      line[--r] = 0;
    if (*n == cap) {
      cap = cap ? cap * 2 : 256;
      char **nl = realloc(*lines, cap * sizeof *nl);
      if (!nl) goto oom;
      *lines = nl;
    }
    (*lines)[*n] = strndup(line, (size_t)r);
    if (!(*lines)[*n]) goto oom;
    (*n)++;
  }
  free(line);
  return 0;
oom:
  free(line);
  mp_cli_free_lines(*lines, *n);
  *lines = NULL;
  *n = 0;
  fprintf(stderr, "mlxport %s: error: out of memory reading input\n", cmd);
  return -1;
}

void mp_cli_free_lines(char **lines, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(lines[i]);
  free(lines);
}

int mp_cli_split_pairs(const char *cmd, char **lines, size_t n, const char ***a, const char ***b) {
  *a = calloc(n ? n : 1, sizeof **a);
  *b = calloc(n ? n : 1, sizeof **b);
  if (!*a || !*b) {
    free(*a), free(*b);
    fprintf(stderr, "mlxport %s: error: out of memory\n", cmd);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    char *tab = strchr(lines[i], '\t');
    if (!tab) {
      fprintf(stderr, "mlxport %s: error: <stdin>:%zu: expected 'premise<TAB>hypothesis' (no TAB found)\n", cmd, i + 1);
      free(*a), free(*b);
      return -1;
    }
    *tab = 0;
    (*a)[i] = lines[i];
    (*b)[i] = tab + 1;
  }
  return 0;
}

char *mp_cli_command_line(int argc, char **argv) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_puts(&sb, "mlxport");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int plain = *a != 0;
    for (const char *p = a; *p; p++)
      if (!(isalnum((unsigned char)*p) || strchr("-_./=:@,+%", *p))) plain = 0;
    mp_sb_putc(&sb, ' ');
    if (plain) {
      mp_sb_puts(&sb, a);
      continue;
    }
    mp_sb_putc(&sb, '\'');
    for (const char *p = a; *p; p++) {
      if (*p == '\'')
        mp_sb_puts(&sb, "'\\''");
      else if (*p == '\n')
        mp_sb_putc(&sb, ' ');
      else
        mp_sb_putc(&sb, *p);
    }
    mp_sb_putc(&sb, '\'');
  }
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}
