/* Recipe search for `mlxport convert --q-auto` (see qsearch.h and docs/quantization.md,
 * "Recipe search").
 *
 * Candidates are tried without writing files: the source model is opened with a weight hook
 * (model/model.h) that replaces each float matrix by the values the converted model would hold
 * (quantized exactly as convert does, decoded by the runtime's own decoder), and the task metric
 * is measured on the calibration set with the faithful (MLX) semantics.
 *
 * Units: the embeddings, the head (pooler / classifier), and per encoder layer its attention
 * block and its feed-forward block. Ladder per unit, by size: 8-bit affine g64 (the start, i.e.
 * uniform q8), mxfp8, 4-bit affine g64, mxfp4, 3-bit affine g64.
 *
 * Greedy with verification: each unit's drop is probed once at 4-bit (the others at 8-bit);
 * units are ranked by bytes saved per point of probed drop. Then, rung by rung, the longest
 * prefix of that ranking that can move one rung down together while the measured calibration
 * drop of the whole recipe stays within the budget is found by bisection; the unit that broke
 * the budget stops and the bisection restarts after it (at most 3 restarts per rung).
 * The criterion compared with the budget is conservative: for classification the larger of the
 * accuracy drop and the fraction of predictions changed against the float model; for
 * similarity the larger of the Spearman drop and the upper end of its one-sided 95%
 * paired-bootstrap interval (500 resamples of the calibration pairs, seed 1).
 * Every accepted state was measured, so the final recipe meets the budget on the calibration
 * set by construction; the cost is 2 + units + ~log2(units) per rung evaluations. */
#include "eval/qsearch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "core/tensor.h"
#include "eval/data_dirs.h"
#include "eval/dataset.h"
#include "eval/evaluate.h"
#include "format/hf.h"
#include "format/weights.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "quant/mlx_affine.h"
#include "quant/mlx_fp.h"

void mp_qauto_opts_init(mp_qauto_opts *o) {
  memset(o, 0, sizeof *o);
  o->max_drop = -1;
  o->calibration_samples = 256;
  o->eval_samples = 1000;
}

#define NLEV 5
static const mp_qspec k_ladder[NLEV] = {
    {1, 8, 64, MP_QMODE_AFFINE}, {1, 8, 32, MP_QMODE_MXFP8},  {1, 4, 64, MP_QMODE_AFFINE},
    {1, 4, 32, MP_QMODE_MXFP4},  {1, 3, 64, MP_QMODE_AFFINE},
};

typedef struct qmod {
  const char *name; /* module path */
  const mp_tensor *t;
  int unit;
  int cache_lev[2];
  float *cache[2];
} qmod;

typedef struct qunit {
  char name[160];
  int level;   /* -1 float, else ladder rung */
  int stopped; /* a move down was rejected */
  double probe_drop;
  double saved; /* bytes saved from rung 0 to rung 2 */
} qunit;

typedef struct qctx {
  mp_arena arena;
  mp_weights *w;
  mp_dtype dt; /* the conversion's float dtype */
  qmod *mods;
  size_t n_mods;
  qunit *units;
  size_t n_units;
  size_t evals;
  int *ref_pred;   /* classification: the float model's calibration predictions */
  double *ref_sim; /* similarity: the float model's calibration cosines */
  size_t n_ref;
  double m_ref, last_raw, last_flips;
} qctx;

static size_t spec_bytes(const mp_tensor *t, const mp_qspec *s, mp_dtype dt) {
  size_t numel = (size_t)mp_tensor_numel(t);
  if (!s->quant || t->shape[1] % s->group_size) return numel * mp_dtype_size(dt);
  size_t ng = numel / (size_t)s->group_size;
  return numel / 8 * (size_t)s->bits + (s->mode == MP_QMODE_AFFINE ? 2 * ng * mp_dtype_size(dt) : ng);
}

/* the weights as the converted model holds them, decoded to float32 like the runtime does */
static mp_status fake_quant(const qctx *c, const mp_tensor *t, const mp_qspec *s, float **out) {
  size_t numel = (size_t)mp_tensor_numel(t), ng = numel / (size_t)s->group_size;
  int fp = s->mode != MP_QMODE_AFFINE;
  size_t es = fp ? 1 : mp_dtype_size(c->dt);
  uint8_t *wq = malloc(numel / 8 * (size_t)s->bits + 8), *sc = malloc(ng * es + 8), *bi = malloc(ng * es + 8);
  float *f = malloc(numel * sizeof(float) + 8);
  mp_status st = (wq && sc && bi && f) ? MP_OK : mp_err(MP_ERR_NOMEM, "out of memory");
  if (!st && fp) {
    st = mp_mlx_fp_quantize(t->data, t->dtype, numel, c->dt, s->mode, t->name, wq, sc, NULL);
    for (size_t i = 0; !st && i < numel; i++)
      f[i] = mp_mlx_fp_value(wq, sc, s->mode, i);
  } else if (!st) {
    st = mp_mlx_affine_quantize(t->data, t->dtype, numel, c->dt, s->bits, s->group_size, MP_QCOMPAT_CPU, t->name, wq,
                                sc, bi);
    mp_linear_weight lw = {.name = t->name,
                           .out = t->shape[0],
                           .in = t->shape[1],
                           .dtype = MP_U32,
                           .data = wq,
                           .bits = s->bits,
                           .group_size = s->group_size,
                           .scale_dtype = c->dt,
                           .scales = sc,
                           .biases = bi};
    if (!st) st = mp_weight_rows_f32(&lw, 0, t->shape[0], f);
  }
  free(wq), free(sc), free(bi);
  if (st) {
    free(f);
    return st;
  }
  *out = f;
  return MP_OK;
}

static const float *hook(void *ctx, const char *module, int64_t out, int64_t in, mp_dtype dt, const void *data) {
  (void)out, (void)in, (void)dt, (void)data;
  qctx *c = ctx;
  for (size_t i = 0; i < c->n_mods; i++) {
    qmod *m = &c->mods[i];
    if (strcmp(m->name, module)) continue;
    int lev = c->units[m->unit].level;
    if (lev < 0 || m->t->shape[1] % k_ladder[lev].group_size) return NULL;
    for (int k = 0; k < 2; k++)
      if (m->cache[k] && m->cache_lev[k] == lev) return m->cache[k];
    /* keep at most two decoded versions per module (the accepted one and the one on trial):
     * replace the one not used by the current level */
    int slot = !m->cache[0] ? 0 : (!m->cache[1] ? 1 : 0);
    free(m->cache[slot]);
    m->cache[slot] = NULL;
    if (fake_quant(c, m->t, &k_ladder[lev], &m->cache[slot])) return NULL; /* error: stays float */
    m->cache_lev[slot] = lev;
    return m->cache[slot];
  }
  return NULL;
}

/* before each evaluation: drop cached versions that the current assignment no longer needs, so
 * a slot is free for the trial (kept: the version at the unit's level) */
static void trim_cache(qctx *c) {
  for (size_t i = 0; i < c->n_mods; i++) {
    qmod *m = &c->mods[i];
    int lev = c->units[m->unit].level;
    for (int k = 0; k < 2; k++)
      if (m->cache[k] && m->cache_lev[k] != lev && m->cache[!k]) {
        free(m->cache[k]);
        m->cache[k] = NULL;
      }
  }
}

static size_t unit_of(qctx *c, const char *module) {
  int layer;
  size_t sl;
  char key[160];
  int k = mp_qmodule_kind(module, &layer, &sl);
  if (k == 'e')
    snprintf(key, sizeof key, "embeddings");
  else if (k == 'h')
    snprintf(key, sizeof key, "head");
  else if (k == 'l') {
    int attn = strstr(module + sl, ".attention.") || strstr(module + sl, ".attn.") ||
               strstr(module + sl, "self_attn") || strstr(module + sl, "encoder_attn");
    const char *dot = strchr(module + sl, '.'); /* "layer." / "layers." */
    size_t pl = dot ? (size_t)(dot - module) + 1 : sl;
    snprintf(key, sizeof key, "%.*s%d/%s", (int)pl, module, layer, attn ? "attention" : "ffn");
  } else
    snprintf(key, sizeof key, "%s", module);
  for (size_t i = 0; i < c->n_units; i++)
    if (!strcmp(c->units[i].name, key)) return i;
  snprintf(c->units[c->n_units].name, sizeof c->units[c->n_units].name, "%s", key);
  c->units[c->n_units].level = -1;
  return c->n_units++;
}

static size_t unit_bytes(const qctx *c, size_t u, int lev) {
  size_t b = 0;
  for (size_t i = 0; i < c->n_mods; i++)
    if ((size_t)c->mods[i].unit == u) {
      mp_qspec fl = {0, 0, 0, MP_QMODE_AFFINE};
      b += spec_bytes(c->mods[i].t, lev < 0 ? &fl : &k_ladder[lev], c->dt);
    }
  return b;
}

static size_t total_bytes(const qctx *c) {
  size_t b = 0;
  for (size_t u = 0; u < c->n_units; u++)
    b += unit_bytes(c, u, c->units[u].level);
  return b;
}

/* paired bootstrap statistic: Spearman(gold, float cosines) - Spearman(gold, candidate cosines)
 * over the resampled pairs */
typedef struct sim_pair {
  const mp_dataset *ds;
  const double *ref, *cur;
  double *a; /* scratch: 3 n values */
} sim_pair;

static double sim_drop_stat(const size_t *idx, size_t n, void *ctx) {
  sim_pair *p = ctx;
  double *g = p->a, *x = p->a + n, *y = p->a + 2 * n;
  for (size_t t = 0; t < n; t++)
    g[t] = p->ds->ex[idx[t]].score, x[t] = p->ref[idx[t]], y[t] = p->cur[idx[t]];
  return mp_spearman(g, x, n) - mp_spearman(g, y, n);
}

/* the search's evaluations: in process, MLX (faithful) semantics, the task metric only */
static void metric_opts(mp_eval_options *eo, int threads) {
  mp_eval_options_init(eo);
  eo->in_process = 1;
  eo->compute = MP_COMPUTE_FAITHFUL;
  eo->latency_requests = 0;
  eo->warmup = 0;
  eo->bootstrap = 0;
  eo->threads = threads;
}

static mp_status metric(qctx *c, const char *src, const mp_dataset *ds, int threads, double *out) {
  mp_eval_options eo;
  metric_opts(&eo, threads);
  eo.weight_hook = hook;
  eo.weight_hook_ctx = c;
  trim_cache(c);
  mp_eval_result r;
  MP_TRY(mp_eval_run(src, ds, &eo, &r));
  double m = mp_eval_main_metric(&r);
  c->last_raw = m;
  c->last_flips = NAN;
  if (r.sim && ds->has_score && r.n == ds->n) {
    if (!c->ref_sim) { /* the float model's cosines are the reference */
      c->ref_sim = malloc((r.n ? r.n : 1) * sizeof *c->ref_sim);
      if (c->ref_sim) memcpy(c->ref_sim, r.sim, r.n * sizeof *c->ref_sim), c->n_ref = r.n, c->m_ref = m;
    } else if (c->n_ref == r.n) {
      /* similarity: the criterion is the upper end of a one-sided 95% paired-bootstrap interval
       * of the Spearman drop (the point drop when larger), so that a recipe accepted on a few
       * hundred calibration pairs also holds on data like them, not only on this sample */
      sim_pair sp = {ds, c->ref_sim, r.sim, NULL};
      mp_ci ci;
      mp_status bs = MP_OK;
      sp.a = malloc(3 * r.n * sizeof *sp.a + 1);
      if (!sp.a) bs = mp_err(MP_ERR_NOMEM, "out of memory");
      if (!bs) bs = mp_bootstrap_ci(r.n, sim_drop_stat, &sp, 500, 0.90, 1, &ci);
      free(sp.a);
      if (bs) {
        mp_eval_result_free(&r);
        return bs;
      }
      double drop = c->m_ref - m;
      if (isfinite(ci.hi) && ci.hi > drop) m = c->m_ref - ci.hi;
    }
  }
  if (r.gold && r.pred) {
    if (!c->ref_pred) { /* the first evaluation is the float model: its predictions are the reference */
      c->ref_pred = malloc((r.n ? r.n : 1) * sizeof *c->ref_pred);
      if (c->ref_pred) memcpy(c->ref_pred, r.pred, r.n * sizeof *c->ref_pred), c->n_ref = r.n, c->m_ref = m;
    } else if (c->n_ref == r.n) {
      /* classification: the criterion is the larger of the accuracy drop and the fraction of
       * predictions that changed against the float model (which bounds the accuracy change on
       * any data like the calibration set, where the accuracy drop alone can hide flips that
       * cancel out) */
      size_t flips = 0;
      for (size_t i = 0; i < r.n; i++)
        flips += r.pred[i] != c->ref_pred[i];
      c->last_flips = r.n ? (double)flips / (double)r.n : 0;
      double drop = c->m_ref - m;
      if (c->last_flips > drop) m = c->m_ref - c->last_flips;
    }
  }
  *out = m;
  mp_eval_result_free(&r);
  c->evals++;
  return MP_OK;
}

/* ---- datasets */

static mp_status load_ds(const char *what, const char *data_dir, mp_dataset **out, char **path) {
  mp_dataset_def def;
  mp_dataset_def_init(&def);
  char *found = NULL;
  mp_status st = MP_OK;
  if (mp_path_exists(what)) {
    def.path = what;
    found = strdup(what);
  } else {
    def.key = what;
    st = mp_data_find_ex(what, data_dir, 0, &found);
    def.path = found;
  }
  if (!st) st = mp_dataset_load(&def, out);
  if (st) {
    free(found);
    return mp_err_prefix(st, "--q-auto: dataset '%s'", what);
  }
  *path = found;
  return MP_OK;
}

/* keeps the examples at positions i with (i % 5 == 0) == keep_calib */
static void slice(mp_dataset *ds, int keep_calib) {
  size_t k = 0;
  for (size_t i = 0; i < ds->n; i++)
    if ((i % 5 == 0) == keep_calib) ds->ex[k++] = ds->ex[i];
  ds->n = k;
}

static void json_metric(mp_sb *sb, const char *key, const char *dataset, const char *slice_desc, size_t n,
                        const char *metric_name, double base, double rec) {
  mp_sb_printf(sb, "\"%s\": {\"dataset\": ", key);
  mp_sb_json_str(sb, dataset, strlen(dataset));
  mp_sb_puts(sb, ", \"slice\": ");
  mp_sb_json_str(sb, slice_desc, strlen(slice_desc));
  mp_sb_printf(sb, ", \"examples\": %zu, \"metric\": \"%s\", \"float\": %.6f, \"recipe\": %.6f, \"drop\": %.6f}", n,
               metric_name, base, rec, base - rec);
}

static mp_status replace_in_file(const char *dir, const char *file, const char *from, const char *to) {
  char *p = mp_path_join(dir, file);
  char *buf = NULL;
  size_t n = 0;
  mp_status st = p ? mp_read_file(p, &buf, &n, 64u << 20) : mp_err(MP_ERR_NOMEM, "out of memory");
  if (!st) {
    char *hit = strstr(buf, from);
    if (hit) {
      mp_sb sb;
      mp_sb_init(&sb);
      mp_sb_append(&sb, buf, (size_t)(hit - buf));
      mp_sb_puts(&sb, to);
      mp_sb_puts(&sb, hit + strlen(from));
      st = sb.oom ? mp_err(MP_ERR_NOMEM, "out of memory") : mp_write_file_atomic(p, sb.buf, sb.len);
      mp_sb_free(&sb);
    }
  }
  free(buf);
  free(p);
  return st;
}

mp_status mp_qauto_convert(const mp_convert_opts *o, const mp_qauto_opts *qa, mp_convert_result *r) {
  memset(r, 0, sizeof *r);
  if (o->n_q_override || o->q_recipe || o->q_recipe_file || o->quant_predicate || o->recipe)
    return mp_err(MP_ERR_INVALID_ARG,
                  "--q-auto searches the whole recipe: it cannot be combined with --q-override, --q-recipe, "
                  "--q-recipe-file or --quant-predicate (re-apply a found recipe with --q-recipe-file)");
  if (o->mode != MP_QMODE_AFFINE)
    return mp_err(MP_ERR_INVALID_ARG, "--q-auto chooses the modes itself: leave --q-mode out");
  const double t0 = mp_now_s();
  qctx c;
  memset(&c, 0, sizeof c);
  mp_arena_init(&c.arena, 0);
  mp_dataset *cal = NULL, *ev = NULL;
  char *src = NULL, *src_dir = NULL, *cal_path = NULL, *ev_path = NULL, *search = NULL;
  mp_qrecipe rec;
  mp_qrecipe_init(&rec);
  mp_json *cfg = NULL;
  mp_status st = mp_hf_resolve(o->hf_path, &src);
  if (!st) {
    src_dir = mp_is_dir(src) ? strdup(src) : mp_path_dirname(src);
    st = src_dir ? mp_hf_load_config(src_dir, &c.arena, &cfg) : mp_err(MP_ERR_NOMEM, "out of memory");
  }
  if (!st) st = mp_weights_open(src, &c.w);
  /* the dtype convert will use */
  c.dt = o->dtype;
  if (!st && c.dt == MP_DTYPE_INVALID) {
    const char *td = mp_json_get_str(cfg, "torch_dtype", mp_json_get_str(cfg, "dtype", NULL));
    if (!td || mp_mlx_dtype_parse(td, &c.dt) != MP_OK) c.dt = MP_F16;
  }
  /* modules and units */
  size_t nt = st ? 0 : mp_weights_count(c.w);
  if (!st) {
    c.mods = calloc(nt ? nt : 1, sizeof *c.mods);
    c.units = calloc(nt ? nt : 1, sizeof *c.units);
    if (!c.mods || !c.units) st = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; !st && i < nt; i++) {
    const mp_tensor *t = mp_weights_at(c.w, i);
    if (!mp_convert_is_layer_weight(t->name, t->dtype, t->ndim)) continue;
    qmod *m = &c.mods[c.n_mods++];
    m->t = t;
    m->name = mp_arena_strndup(&c.arena, t->name, strlen(t->name) - 7);
    if (!m->name)
      st = mp_err(MP_ERR_NOMEM, "out of memory");
    else
      m->unit = (int)unit_of(&c, m->name);
  }
  /* datasets: calibration, held-out (the same file: a disjoint slice, docs) */
  const char *ev_name = qa->eval ? qa->eval : qa->calibration;
  if (!st) st = load_ds(qa->calibration, qa->data_dir, &cal, &cal_path);
  if (!st) st = load_ds(ev_name, qa->data_dir, &ev, &ev_path);
  int same = !st && !strcmp(cal_path, ev_path);
  char cal_slice[256], ev_slice[256];
  if (!st) {
    if (same) {
      slice(cal, 1);
      slice(ev, 0);
      snprintf(cal_slice, sizeof cal_slice, "examples at positions i %% 5 == 0 of %s (held out: the others)", cal_path);
      snprintf(ev_slice, sizeof ev_slice, "examples at positions i %% 5 != 0 of %s", ev_path);
    } else {
      snprintf(cal_slice, sizeof cal_slice, "%s (a different dataset from the held-out one)", cal_path);
      snprintf(ev_slice, sizeof ev_slice, "%s", ev_path);
    }
    size_t ncal = cal->n;
    st = mp_dataset_sample(cal, qa->calibration_samples, 1);
    if (!st) st = mp_dataset_sample(ev, qa->eval_samples, 2);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "; %zu of %zu sampled with seed 1", cal->n, ncal);
    strncat(cal_slice, tmp, sizeof cal_slice - strlen(cal_slice) - 1);
  }
  /* the search */
  double m_float = 0, m_cur = 0, m_try = 0, raw_cur = 0, flips_cur = NAN;
  size_t q8_bytes = 0;
  if (!st) st = metric(&c, src, cal, qa->threads, &m_float);
  for (size_t u = 0; u < c.n_units; u++)
    c.units[u].level = 0;
  if (!st) st = metric(&c, src, cal, qa->threads, &m_cur);
  raw_cur = c.last_raw, flips_cur = c.last_flips;
  q8_bytes = total_bytes(&c);
  if (!st && m_float - m_cur > qa->max_drop)
    st = mp_err(MP_ERR_INVALID_ARG,
                "--q-auto: even uniform 8-bit drops the calibration metric by %.4f (> --max-drop %.4f); raise the "
                "budget or keep the model in float",
                m_float - m_cur, qa->max_drop);
  for (size_t u = 0; !st && u < c.n_units; u++) {
    c.units[u].level = 2;
    st = metric(&c, src, cal, qa->threads, &m_try);
    c.units[u].level = 0;
    c.units[u].probe_drop = m_cur - m_try;
    c.units[u].saved = (double)unit_bytes(&c, u, 0) - (double)unit_bytes(&c, u, 2);
  }
  size_t *order = st ? NULL : malloc((c.n_units ? c.n_units : 1) * sizeof *order);
  if (!st && !order) st = mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t u = 0; order && u < c.n_units; u++)
    order[u] = u;
  for (size_t i = 1; order && i < c.n_units; i++) /* by bytes saved per point of probed drop */
    for (size_t j = i; j > 0; j--) {
      const qunit *a = &c.units[order[j - 1]], *b = &c.units[order[j]];
      double ea = a->saved / fmax(a->probe_drop, 1e-4), eb = b->saved / fmax(b->probe_drop, 1e-4);
      if (ea >= eb) break;
      size_t t = order[j];
      order[j] = order[j - 1], order[j - 1] = t;
    }
  /* rung by rung: the units still moving, in efficiency order; the longest prefix of them that
   * can take the next rung together within the budget is found by bisection (assuming a longer
   * prefix never drops less); the unit right after it (the one that broke the budget) stops, and
   * the search restarts on the units after it (up to 3 restarts per rung; then the rest stop) */
  size_t *cand = st ? NULL : malloc((c.n_units ? c.n_units : 1) * sizeof *cand);
  if (!st && !cand) st = mp_err(MP_ERR_NOMEM, "out of memory");
  for (int rung = 1; !st && rung < NLEV; rung++) {
    size_t nc = 0;
    for (size_t i = 0; i < c.n_units; i++)
      if (!c.units[order[i]].stopped && c.units[order[i]].level == rung - 1) cand[nc++] = order[i];
    if (!nc) break;
    size_t base = 0;
    for (int restart = 0; !st && base < nc && restart <= 3; restart++) {
      size_t n = nc - base, lo = 0, hi = n; /* of cand[base..]: the first lo can move, more than hi cannot */
      double m_lo = m_cur, raw_lo = raw_cur, flips_lo = flips_cur;
      while (!st && lo < hi) {
        size_t mid = lo == 0 && hi == n ? n : (lo + hi + 1) / 2;
        for (size_t i = 0; i < n; i++)
          c.units[cand[base + i]].level = i < mid ? rung : rung - 1;
        st = metric(&c, src, cal, qa->threads, &m_try);
        if (st) break;
        if (m_float - m_try <= qa->max_drop)
          lo = mid, m_lo = m_try, raw_lo = c.last_raw, flips_lo = c.last_flips;
        else
          hi = mid - 1;
      }
      for (size_t i = 0; i < n; i++)
        c.units[cand[base + i]].level = i < lo ? rung : rung - 1;
      m_cur = m_lo, raw_cur = raw_lo, flips_cur = flips_lo;
      if (base + lo < nc) c.units[cand[base + lo]].stopped = 1;
      base += lo + 1;
    }
    for (size_t i = base; i < nc; i++)
      c.units[cand[i]].stopped = 1;
  }
  free(cand);
  free(order);
  /* the recipe: default 8-bit affine g64, one exact rule per module elsewhere */
  for (size_t i = 0; !st && i < c.n_mods; i++) {
    int lev = c.units[c.mods[i].unit].level;
    if (lev > 0) st = mp_qrecipe_add(&rec, c.mods[i].name, &k_ladder[lev], "auto");
  }
  size_t rec_bytes = total_bytes(&c);
  mp_sb sb;
  mp_sb_init(&sb);
  if (!st) {
    mp_sb_printf(&sb, "{\"method\": \"greedy\", \"max_drop\": %g, ", qa->max_drop);
    json_metric(&sb, "calibration", cal->name, cal_slice, cal->n, cal->has_score ? "spearman" : "accuracy", m_float,
                raw_cur);
    sb.len--; /* reopen the object: the criterion */
    mp_sb_puts(&sb, ", \"changed_predictions\": ");
    mp_sb_json_f64(&sb, flips_cur);
    mp_sb_printf(&sb, ", \"criterion\": \"%s\", \"criterion_drop\": %.6f}",
                 cal->has_score ? "max(spearman drop, upper end of its one-sided 95% paired-bootstrap interval)"
                                : "max(accuracy drop, fraction of predictions changed vs float)",
                 m_float - m_cur);
    mp_sb_printf(&sb,
                 ", \"evaluations\": %zu, \"search_seconds\": %.1f, \"weight_bytes_estimate\": %zu, "
                 "\"uniform_q8_weight_bytes_estimate\": %zu, \"units\": {",
                 c.evals, mp_now_s() - t0, rec_bytes, q8_bytes);
    for (size_t u = 0; u < c.n_units; u++) {
      char b[64];
      mp_qspec fl = {0, 0, 0, MP_QMODE_AFFINE};
      int lev = c.units[u].level;
      mp_sb_printf(&sb, "%s\"%s\": {\"spec\": \"%s\", \"probe_drop_4bit\": %.5f}", u ? ", " : "", c.units[u].name,
                   mp_qspec_str(lev < 0 ? &fl : &k_ladder[lev], b, sizeof b), c.units[u].probe_drop);
    }
    mp_sb_puts(&sb, "}, \"held_out\": null}");
    if (sb.oom) st = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  /* free the decoded candidates before converting */
  for (size_t i = 0; i < c.n_mods; i++)
    free(c.mods[i].cache[0]), free(c.mods[i].cache[1]), c.mods[i].cache[0] = c.mods[i].cache[1] = NULL;
  if (!st) {
    search = mp_sb_steal(&sb);
    mp_convert_opts co = *o;
    co.bits = 8, co.group_size = 64, co.mode = MP_QMODE_AFFINE;
    co.quantize = 1;
    co.recipe = &rec;
    co.search_json = search;
    st = mp_convert(&co, r);
  } else {
    mp_sb_free(&sb);
  }
  /* the held-out drop, measured on the converted folder as it is */
  if (!st && strcmp(r->status, "planned") != 0) {
    mp_eval_options eo;
    metric_opts(&eo, qa->threads);
    mp_eval_result rb, rc;
    st = mp_eval_run(src, ev, &eo, &rb);
    if (!st) {
      st = mp_eval_run(o->mlx_path, ev, &eo, &rc);
      if (!st) {
        mp_sb h;
        mp_sb_init(&h);
        json_metric(&h, "held_out", ev->name, ev_slice, ev->n, mp_eval_main_metric_name(&rb), mp_eval_main_metric(&rb),
                    mp_eval_main_metric(&rc));
        /* "held_out": {...} replaces the placeholder in the metadata and the card */
        char *obj = h.oom ? NULL : strchr(h.buf, '{');
        char *to = obj ? strdup(h.buf) : NULL;
        if (!to) st = mp_err(MP_ERR_NOMEM, "out of memory");
        if (!st) st = replace_in_file(o->mlx_path, "conversion_metadata.json", "\"held_out\": null", to);
        if (!st) st = replace_in_file(o->mlx_path, "README.md", "\"held_out\": null", to);
        if (!st) {
          mp_sb rep;
          mp_sb_init(&rep);
          mp_sb_printf(&rep, "{\"status\": \"%s\", \"output\": ", r->status);
          mp_sb_json_str(&rep, o->mlx_path, strlen(o->mlx_path));
          mp_sb_printf(&rep, ", \"output_weight_bytes\": %llu, \"search\": ", (unsigned long long)r->output_bytes);
          mp_sb_puts(&rep, search);
          mp_sb_puts(&rep, "}\n");
          /* the report's search object carries the held-out figures too */
          char *full = rep.oom ? NULL : mp_sb_steal(&rep);
          if (full) {
            char *hit = strstr(full, "\"held_out\": null");
            mp_sb f2;
            mp_sb_init(&f2);
            if (hit) {
              mp_sb_append(&f2, full, (size_t)(hit - full));
              mp_sb_puts(&f2, to);
              mp_sb_puts(&f2, hit + strlen("\"held_out\": null"));
            } else {
              mp_sb_puts(&f2, full);
            }
            free(full);
            free(r->json);
            r->json = mp_sb_steal(&f2);
          }
          if (!qa->json) {
            char b[64];
            fprintf(stderr, "q-auto: %zu evaluations; recipe (default 8-bit affine g64):\n", c.evals);
            for (size_t u = 0; u < c.n_units; u++) {
              mp_qspec fl = {0, 0, 0, MP_QMODE_AFFINE};
              int lev = c.units[u].level;
              fprintf(stderr, "  %-40s %-18s (4-bit probe drop %+.4f)\n", c.units[u].name,
                      mp_qspec_str(lev < 0 ? &fl : &k_ladder[lev], b, sizeof b), c.units[u].probe_drop);
            }
            fprintf(stderr,
                    "q-auto: weights %.2f MB (uniform q8 %.2f MB); calibration %s %.4f -> %.4f (criterion drop "
                    "%.4f, budget %.4f); held-out %s n=%zu %.4f -> %.4f (drop %.4f)\n",
                    (double)r->output_bytes / 1e6, (double)q8_bytes / 1e6, mp_eval_main_metric_name(&rb), m_float,
                    raw_cur, m_float - m_cur, qa->max_drop, ev->name, ev->n, mp_eval_main_metric(&rb),
                    mp_eval_main_metric(&rc), mp_eval_main_metric(&rb) - mp_eval_main_metric(&rc));
          }
        }
        free(to);
        mp_sb_free(&h);
        mp_eval_result_free(&rc);
      }
      mp_eval_result_free(&rb);
    }
  }
  free(search);
  mp_qrecipe_free(&rec);
  for (size_t i = 0; i < c.n_mods; i++)
    free(c.mods[i].cache[0]), free(c.mods[i].cache[1]);
  free(c.mods), free(c.units), free(c.ref_pred), free(c.ref_sim);
  mp_weights_close(c.w);
  mp_dataset_free(cal), mp_dataset_free(ev);
  free(cal_path), free(ev_path), free(src), free(src_dir);
  mp_arena_free(&c.arena);
  return st;
}
