/* Weight-level comparison of a converted (MLX) model against its original checkpoint
 * (`mlxport verify-weights`): every original float tensor is matched with its converted
 * counterpart (dequantized exactly like mx.dequantize when it has .scales/.biases, read as
 * float otherwise) and the error is measured: max abs, RMS, relative RMS, SNR in dB. */
#ifndef MP_QUANT_VERIFY_H
#define MP_QUANT_VERIFY_H
#include <stddef.h>

#include "mlxport.h"

typedef struct mp_verify_opts {
  const char *original, *converted; /* folders, weight files or repo ids */
  double max_rel_rms;               /* per-tensor gate (<= 0: default 0.2) */
  double min_snr_db;                /* per-tensor gate (0: none) */
} mp_verify_opts;

typedef struct mp_verify_tensor {
  char *name;
  const char *kind; /* "quantized", "float", "missing", "shape mismatch" */
  int bits, group_size;
  double max_abs, rms, rel_rms, snr_db;
  int pass;
} mp_verify_tensor;

typedef struct mp_verify_report {
  mp_verify_tensor *t; /* sorted worst first (failures, then by relative RMS error) */
  size_t n;
  size_t n_failed, n_quantized, n_extra; /* n_extra: converted tensors with no original */
  int pass;
} mp_verify_report;

mp_status mp_verify_weights(const mp_verify_opts *o, mp_verify_report *r);
void mp_verify_report_free(mp_verify_report *r);
/* The whole report as JSON (malloc'd). */
char *mp_verify_report_json(const mp_verify_opts *o, const mp_verify_report *r);
#endif
