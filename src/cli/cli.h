/* Shared CLI plumbing: exit codes, option parsing helpers, error reporting.
 * Each subcommand lives in cmd_<name>.c and defines
 *   int mp_cmd_<name>(int argc, char **argv);   argv[0] is the subcommand name
 *   extern const char mp_cmd_<name>_summary[];  one line for `mlxport --help`
 * The command table is generated from the file names by CMakeLists.txt. */
#ifndef MP_CLI_H
#define MP_CLI_H
#include <stdio.h>

#include "mlxport.h"

/* Exit status, the same for every command. */
enum {
  MP_EXIT_OK = 0,    /* success (and every quality gate passed) */
  MP_EXIT_GATE = 1,  /* a quality gate failed */
  MP_EXIT_USAGE = 2, /* bad command line */
  MP_EXIT_ERROR = 3, /* bad input, missing file, I/O, ... */
};

/* Prints "mlxport <cmd>: error: <mp_last_error()>" to stderr; returns the exit code for s. */
int mp_cli_fail(const char *cmd, mp_status s);
/* Prints a usage error and a hint to --help; returns MP_EXIT_USAGE. */
int mp_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Option matching: "--name VALUE" or "--name=VALUE". Advances *i when the value is the next
 * argument. Returns 1 when argv[*i] is this option (then *value is set, or a usage error is
 * printed and *value is NULL), 0 otherwise. */
int mp_cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* Reads an integer option value in [lo, hi]; returns 0 on success, else prints the usage error and
 * returns non-zero (CLI convention: exit codes, not mp_status). */
int mp_cli_opt_int(const char *cmd, const char *opt, const char *v, long long lo, long long hi, long long *out);
/* stderr is a terminal and NO_COLOR is unset */
int mp_cli_color(void);
/* Human-readable byte size ("87.3 MB"). */
const char *mp_cli_human_bytes(double bytes, char *buf, size_t cap);

/* Reads all lines of f (without their "\n" / "\r\n") into a malloc'd array of malloc'd
 * strings. Returns 0, or prints an error and returns -1. Free with mp_cli_free_lines. */
int mp_cli_read_lines(const char *cmd, FILE *f, char ***lines, size_t *n);
void mp_cli_free_lines(char **lines, size_t n);
/* Splits each line at its first TAB into (a, b) in place; a line without TAB is an error
 * naming the line. Returns 0 or prints and returns -1. */
int mp_cli_split_pairs(const char *cmd, char **lines, size_t n, const char ***a, const char ***b);

/* The command line as a shell would take it back ("mlxport convert --hf-path 'a b' ..."; argv[0] is the
 * subcommand), for model cards and logs. malloc'd. */
char *mp_cli_command_line(int argc, char **argv);

#define MP_COMMAND(n)                                                                                                  \
  int mp_cmd_##n(int argc, char **argv);                                                                               \
  extern const char mp_cmd_##n##_summary[];
#include "cli_commands.inc"
#undef MP_COMMAND
#endif
