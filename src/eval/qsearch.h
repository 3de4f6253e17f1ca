/* `mlxport convert --q-auto`: search of a per-layer quantization recipe that minimises the
 * model's size while the task metric on a calibration set drops by at most --max-drop, then the
 * conversion with that recipe and the drop on a held-out evaluation set. See
 * docs/quantization.md ("Recipe search"). */
#ifndef MP_EVAL_QSEARCH_H
#define MP_EVAL_QSEARCH_H
#include <stddef.h>

#include "mlxport.h"
#include "quant/convert.h"

typedef struct mp_qauto_opts {
  double max_drop;            /* metric points (0.01 = 1 point of accuracy / Spearman); < 0 unset */
  const char *calibration;    /* dataset key or file */
  size_t calibration_samples; /* default 256 */
  const char *eval;           /* held-out dataset key or file; NULL: the default for the task */
  size_t eval_samples;        /* default 1000 */
  int json;                   /* report as JSON on stdout (else text on stderr) */
  int threads;                /* 0: all cores */
  const char *data_dir;       /* --data-dir for dataset keys (NULL: the usual search) */
} mp_qauto_opts;
void mp_qauto_opts_init(mp_qauto_opts *o);

/* Searches the recipe on o->hf_path, converts with it into o->mlx_path (the recipe and the
 * search figures go into conversion_metadata.json and the model card), evaluates the held-out
 * drop and reports it. */
mp_status mp_qauto_convert(const mp_convert_opts *o, const mp_qauto_opts *qa, mp_convert_result *r);
#endif
