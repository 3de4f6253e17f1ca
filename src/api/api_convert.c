/* Public API (include/mlxport/convert.h): mlxport_convert over quant/convert.h. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "mlxport.h"
#include "quant/convert.h"
#include "quant/mlx_affine.h"

MLXPORT_API void mlxport_convert_options_init(mlxport_convert_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->bits = 4;
  o->group_size = 64;
}

MLXPORT_API mlxport_status mlxport_convert(const mlxport_convert_options *options, char **summary_json) {
  if (summary_json) *summary_json = NULL;
  if (!options) return mp_err(MP_ERR_INVALID_ARG, "mlxport_convert: options is NULL");
  mlxport_convert_options po;
  mlxport_convert_options_init(&po);
  if (options->struct_size < offsetof(mlxport_convert_options, source) || options->struct_size > sizeof po)
    return mp_err(MP_ERR_INVALID_ARG,
                  "mlxport_convert: options->struct_size %zu is not valid: initialise the "
                  "options with mlxport_convert_options_init",
                  options->struct_size);
  memcpy(&po, options, options->struct_size);
  if (!po.source || !*po.source) return mp_err(MP_ERR_INVALID_ARG, "mlxport_convert: no source model given");
  if (!po.output || !*po.output) return mp_err(MP_ERR_INVALID_ARG, "mlxport_convert: no output folder given");
  mp_convert_opts o;
  mp_convert_opts_init(&o);
  o.hf_path = po.source;
  o.mlx_path = po.output;
  o.quantize = po.quantize != 0;
  o.bits = po.bits;
  o.group_size = po.group_size;
  if (o.quantize && !mp_mlx_affine_supported(o.bits, o.group_size))
    return mp_err(MP_ERR_INVALID_ARG,
                  "mlxport_convert: bits %d, group size %d: MLX supports bits 2,3,4,5,6,8 and group sizes 32,64,128",
                  o.bits, o.group_size);
  if (po.dtype && mp_mlx_dtype_parse(po.dtype, &o.dtype))
    return mp_err(MP_ERR_INVALID_ARG, "mlxport_convert: dtype must be float16, bfloat16 or float32, got '%s'",
                  po.dtype);
  if (po.n_skip && !po.skip) return mp_err(MP_ERR_INVALID_ARG, "mlxport_convert: n_skip > 0 but skip is NULL");
  o.q_skip = po.skip;
  o.n_q_skip = po.n_skip;
  o.no_skip = po.force != 0;
  o.dry_run = po.dry_run != 0;
  o.cancel = (volatile sig_atomic_t *)po.cancel;
  o.progress = po.progress;
  o.progress_user = po.progress_user;
  mp_convert_result r;
  memset(&r, 0, sizeof r);
  mp_status s = mp_convert(&o, &r);
  if (!s && summary_json) {
    *summary_json = r.json;
    r.json = NULL;
  }
  mp_convert_result_free(&r);
  return s;
}
