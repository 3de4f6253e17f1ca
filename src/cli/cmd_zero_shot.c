/* mlxport zero-shot: zero-shot classification through an NLI model, with the semantics of
 * transformers' ZeroShotClassificationPipeline. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run_opts.h"
#include "core/strbuf.h"
#include "model/model.h"

const char mp_cmd_zero_shot_summary[] = "zero-shot classification of lines on stdin through an NLI model";

static const char *k_help =
    "usage: mlxport zero-shot --model DIR|REPO_ID --labels \"a,b,c\" [--template T] [--multi-label] [--json]\n"
    "\n"
    "For each line of stdin and each candidate label, the NLI model scores the pair\n"
    "(text, template with {} replaced by the label), truncating only the text, exactly as\n"
    "transformers' zero-shot-classification pipeline does:\n"
    "  single-label (default): softmax of the entailment logits across the labels;\n"
    "  --multi-label (or one label): per label, softmax of [contradiction, entailment].\n"
    "The entailment index is the id2label entry starting with \"entail\"; contradiction is index\n"
    "0 (or the last index when entailment is 0), so two-class entailment/not_entailment models work.\n"
    "Output per line: plain `TOP_LABEL<TAB>SCORE`; --json\n"
    "  {\"sequence\": \"...\", \"labels\": [...], \"scores\": [...]} sorted by score, highest first.\n"
    "\n"
    "  --labels L       comma-separated candidate labels (required)\n"
    "  --template T     hypothesis template with {} (default \"This example is {}.\")\n"
    "  --multi-label    independent scores per label\n"
    "  --json           JSON output\n" MP_RUN_OPTS_HELP;

typedef struct {
  float s;
  int i;
} scored;
static int cmp_scored(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->s != y->s) return x->s < y->s ? 1 : -1;
  return x->i - y->i;
}

int mp_cmd_zero_shot(int argc, char **argv) {
  mp_cli_run_opts ro;
  int rc = mp_cli_run_opts_read("zero-shot", argc, argv, &ro, k_help, 2);
  if (rc >= 0) return rc;
  /* labels */
  char *labels_buf = strdup(ro.labels);
  char *labs[256];
  int nl = 0;
  for (char *save = NULL, *t = strtok_r(labels_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ')
      t++;
    size_t l = strlen(t);
    while (l && t[l - 1] == ' ')
      t[--l] = 0;
    if (!*t) continue;
    if (nl == 256) {
      free(labels_buf);
      return mp_cli_usage_error("zero-shot", "at most 256 labels");
    }
    labs[nl++] = t;
  }
  if (nl == 0) {
    free(labels_buf);
    return mp_cli_usage_error("zero-shot", "--labels has no label");
  }
  char **lines;
  size_t n;
  if (mp_cli_read_lines("zero-shot", stdin, &lines, &n)) {
    free(labels_buf);
    return MP_EXIT_ERROR;
  }
  /* hypotheses */
  char *hyp[256];
  const char *tp = strstr(ro.template_, "{}");
  for (int j = 0; j < nl; j++) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_append(&sb, ro.template_, (size_t)(tp - ro.template_));
    mp_sb_puts(&sb, labs[j]);
    mp_sb_puts(&sb, tp + 2);
    hyp[j] = mp_sb_steal(&sb);
  }
  mp_model *m = NULL;
  mp_model_options mo = {
      .threads = ro.threads, .compute = ro.compute, .device = ro.device, .device_dtype = ro.device_dtype};
  mp_status st = mp_model_open(ro.model, &mo, &m);
  const mp_model_config *c = st ? NULL : mp_model_get_config(m);
  int ent = c ? mp_model_config_entailment_id(c) : -1;
  if (!st && c->num_labels < 2) st = MP_ERR_INVALID_ARG;
  size_t np = n * (size_t)nl;
  const char **pa = calloc(np ? np : 1, sizeof *pa), **pb = calloc(np ? np : 1, sizeof *pb);
  float *logits = NULL;
  if (!st) {
    int L = c->num_labels;
    if (ent < 0) {
      fprintf(stderr,
              "mlxport zero-shot: warning: no id2label entry starts with \"entail\"; using the last label (%s) as "
              "entailment, as transformers does\n",
              c->id2label[L - 1]);
      ent = L - 1;
    }
    for (size_t i = 0; i < n; i++)
      for (int j = 0; j < nl; j++)
        pa[i * nl + j] = lines[i], pb[i * nl + j] = hyp[j];
    ro.run.truncation = MP_TRUNC_ONLY_FIRST;
    logits = malloc((np ? np : 1) * (size_t)L * sizeof(float));
    st = logits ? mp_model_classify(m, np, pa, pb, &ro.run, logits, NULL) : MP_ERR_NOMEM;
  }
  if (!st) {
    int L = c->num_labels;
    int con = ent == 0 ? L - 1 : 0;
    int multi = ro.multi_label || nl == 1;
    mp_sb sb;
    mp_sb_init(&sb);
    scored sc[256];
    for (size_t i = 0; i < n; i++) {
      const float *lg = logits + i * (size_t)nl * L;
      if (multi) {
        for (int j = 0; j < nl; j++) {
          double e = lg[j * L + ent], k = lg[j * L + con], mx = e > k ? e : k;
          sc[j].s = (float)(exp(e - mx) / (exp(e - mx) + exp(k - mx)));
          sc[j].i = j;
        }
      } else {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < nl; j++)
          mx = lg[j * L + ent] > mx ? lg[j * L + ent] : mx;
        for (int j = 0; j < nl; j++)
          s += exp(lg[j * L + ent] - mx);
        for (int j = 0; j < nl; j++)
          sc[j].s = (float)(exp(lg[j * L + ent] - mx) / s), sc[j].i = j;
      }
      qsort(sc, (size_t)nl, sizeof *sc, cmp_scored);
      mp_sb_clear(&sb);
      if (ro.json) {
        mp_sb_puts(&sb, "{\"sequence\":");
        mp_sb_json_str(&sb, lines[i], strlen(lines[i]));
        mp_sb_puts(&sb, ",\"labels\":[");
        for (int j = 0; j < nl; j++) {
          if (j) mp_sb_putc(&sb, ',');
          mp_sb_json_str(&sb, labs[sc[j].i], strlen(labs[sc[j].i]));
        }
        mp_sb_puts(&sb, "],\"scores\":[");
        for (int j = 0; j < nl; j++) {
          if (j) mp_sb_putc(&sb, ',');
          mp_sb_json_f32(&sb, sc[j].s);
        }
        mp_sb_puts(&sb, "]}\n");
      } else {
        mp_sb_printf(&sb, "%s\t%.6f\n", labs[sc[0].i], sc[0].s);
      }
      fwrite(sb.buf, 1, sb.len, stdout);
    }
    mp_sb_free(&sb);
  } else if (st == MP_ERR_INVALID_ARG && c && c->num_labels < 2) {
    fprintf(stderr, "mlxport zero-shot: error: the model needs an NLI head with at least 2 labels\n");
  }
  free(logits);
  free(pa), free(pb);
  for (int j = 0; j < nl; j++)
    free(hyp[j]);
  mp_model_close(m);
  mp_cli_free_lines(lines, n);
  free(labels_buf);
  return st ? mp_cli_fail("zero-shot", st) : MP_EXIT_OK;
}
