/* mlxport clean: remove temporary leftovers of interrupted runs from a work folder. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "pipeline/pipeline.h"

const char mp_cmd_clean_summary[] = "remove temporary leftovers (interrupted conversions/results) from a work folder";

int mp_cmd_clean(int argc, char **argv) {
  const char *workdir = NULL;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      puts("usage: mlxport clean [--workdir DIR]\n\nRemoves the temporary files and folders (\".NAME.tmp-*\") that a "
           "killed\nrun can leave; finished models and results are kept.");
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--workdir", &v)) {
      if (!v) return MP_EXIT_USAGE;
      workdir = v;
    } else {
      return mp_cli_usage_error("clean", "unknown option '%s'", argv[i]);
    }
  }
  char *wd = workdir ? strdup(workdir) : mp_pipeline_default_workdir();
  size_t removed = 0;
  mp_status st = mp_pipeline_clean(wd, &removed);
  if (!st) printf("removed %zu temporary item%s from %s\n", removed, removed == 1 ? "" : "s", wd);
  free(wd);
  return st ? mp_cli_fail("clean", st) : MP_EXIT_OK;
}
