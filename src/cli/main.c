/* mlxport: command-line entry point. Dispatches to src/cli/cmd_<name>.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

typedef struct {
  const char *name;
  int (*fn)(int, char **);
  const char *summary;
} command;

static const command k_commands[] = {
#define MP_COMMAND(n) {#n, mp_cmd_##n, mp_cmd_##n##_summary},
#include "cli_commands.inc"
#undef MP_COMMAND
};
static const size_t k_ncommands = sizeof k_commands / sizeof k_commands[0];

/* Command names come from file names (cmd_verify_weights.c); users type dashes (verify-weights). */
static int name_eq(const char *typed, const char *name) {
  for (; *typed && *name; typed++, name++)
    if (*typed != (*name == '_' ? '-' : *name)) return 0;
  return *typed == 0 && *name == 0;
}
static void print_name(FILE *f, const char *name) {
  char buf[64];
  size_t i = 0;
  for (; name[i] && i < sizeof buf - 1; i++)
    buf[i] = name[i] == '_' ? '-' : name[i];
  buf[i] = 0;
  fprintf(f, "  %-16s", buf);
}

static void print_help(FILE *f) {
  fprintf(f,
          "mlxport %s: convert Hugging Face models to MLX format, run and evaluate them anywhere.\n\n"
          "usage: mlxport <command> [options]      (mlxport <command> --help for details)\n\n"
          "commands:\n",
          MP_VERSION_STRING);
  for (size_t i = 0; i < k_ncommands; i++) {
    print_name(f, k_commands[i].name);
    fprintf(f, " %s\n", k_commands[i].summary);
  }
  fprintf(f, "\nexit status: 0 success, 1 a quality gate failed, 2 usage error, 3 any other error.\n"
             "environment: HF_HUB_CACHE / HF_HOME locate the Hugging Face cache; a repo id that is not cached\n"
             "             is downloaded from HF_ENDPOINT (HF_TOKEN; HF_HUB_OFFLINE=1 forbids it; docs/hub.md);\n"
             "             NO_COLOR disables color;\n"
             "             MLXPORT_LOG=debug|info|warn|error sets the log level (default info).\n");
}

static void log_to_stderr(mp_log_level level, const char *msg, void *user) {
  (void)user;
  static const char *names[] = {"debug", "info", "warning", "error"};
  if (level == MP_LOG_INFO)
    fprintf(stderr, "%s\n", msg);
  else
    fprintf(stderr, "%s: %s\n", names[level], msg);
}

int main(int argc, char **argv) {
  mp_log_level lvl = MP_LOG_INFO;
  const char *env = getenv("MLXPORT_LOG");
  if (env) {
    if (!strcmp(env, "debug"))
      lvl = MP_LOG_DEBUG;
    else if (!strcmp(env, "warn"))
      lvl = MP_LOG_WARN;
    else if (!strcmp(env, "error"))
      lvl = MP_LOG_ERROR;
  }
  mp_set_log_callback(log_to_stderr, NULL, lvl);
  if (argc < 2) {
    print_help(stderr);
    return MP_EXIT_USAGE;
  }
  const char *c = argv[1];
  if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
    if (argc >= 3 && strcmp(c, "help") == 0) {
      for (size_t i = 0; i < k_ncommands; i++)
        if (name_eq(argv[2], k_commands[i].name)) {
          char *hv[] = {(char *)k_commands[i].name, "--help", NULL};
          return k_commands[i].fn(2, hv);
        }
    }
    print_help(stdout);
    return MP_EXIT_OK;
  }
  if (!strcmp(c, "--version")) {
    printf("mlxport %s\n", MP_VERSION_STRING);
    return MP_EXIT_OK;
  }
  for (size_t i = 0; i < k_ncommands; i++)
    if (name_eq(c, k_commands[i].name)) return k_commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "mlxport: unknown command '%s'\n", c);
  /* did-you-mean on a shared prefix */
  for (size_t i = 0; i < k_ncommands; i++)
    if (!strncmp(c, k_commands[i].name, 3)) fprintf(stderr, "  did you mean '%s'?\n", k_commands[i].name);
  fprintf(stderr, "run 'mlxport --help' for the list of commands\n");
  return MP_EXIT_USAGE;
}
