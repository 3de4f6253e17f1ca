/* libFuzzer target: config.json of a model folder -> mp_model_config (every family's field rules)
 * and each family's parameter count from the config alone (integer overflow, absurd sizes). The
 * input is written as <tmpdir>/config.json; both calls must return cleanly (a count or an error). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "model/config.h"
#include "model/model.h"

static char g_dir[64], g_file[96];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "/tmp/mp_fuzz_cfg_XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    snprintf(g_file, sizeof g_file, "%s/config.json", g_dir);
  }
  FILE *f = fopen(g_file, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
  mp_model_config cfg;
  if (mp_model_config_load(g_dir, &cfg) == MP_OK) mp_model_config_free(&cfg);
  mp_err_clear();
  int64_t n;
  int cls;
  (void)mp_model_config_param_count(g_dir, &n, &cls);
  mp_err_clear();
  return 0;
}
