/* mlxport version: prints the version. */
#include <string.h>

#include "cli/cli.h"

const char mp_cmd_version_summary[] = "print the version";

int mp_cmd_version(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("mlxport %s\n", MP_VERSION_STRING);
  return MP_EXIT_OK;
}
