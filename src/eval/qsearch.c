/* Recipe search for `mlxport convert --q-auto` (see qsearch.h and docs/quantization.md). */
#include "eval/qsearch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void mp_qauto_opts_init(mp_qauto_opts *o) {
  memset(o, 0, sizeof *o);
  o->max_drop = -1;
  o->calibration_samples = 256;
  o->eval_samples = 1000;
}

mp_status mp_qauto_convert(const mp_convert_opts *o, const mp_qauto_opts *qa, mp_convert_result *r) {
  (void)o, (void)qa;
  memset(r, 0, sizeof *r);
  return mp_err(MP_ERR_UNSUPPORTED, "--q-auto: not implemented yet");
}
