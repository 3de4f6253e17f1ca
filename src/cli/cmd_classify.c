/* mlxport classify: sequence classification of texts or premise/hypothesis pairs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run_opts.h"
#include "core/strbuf.h"
#include "model/model.h"

const char mp_cmd_classify_summary[] = "classify lines on stdin (texts, or premise<TAB>hypothesis with --pair)";

static const char *k_help =
    "usage: mlxport classify --model DIR|REPO_ID [--pair] [--json] [options]\n"
    "\n"
    "Runs a *ForSequenceClassification model on each line of stdin (or on premise<TAB>hypothesis\n"
    "pairs with --pair) and writes one line per input, in input order:\n"
    "  plain:  LABEL<TAB>SCORE\n"
    "  --json: {\"label\": \"...\", \"score\": p, \"logits\": [...]}\n"
    "The label comes from config.json id2label; score is the softmax probability of that label.\n"
    "\n" MP_RUN_OPTS_HELP;

/* softmax of row in place; returns argmax */
int mp_cli_softmax_argmax(const float *logits, int n, float *probs) {
  float mx = logits[0];
  int arg = 0;
  for (int i = 1; i < n; i++)
    if (logits[i] > mx) mx = logits[i], arg = i;
  double s = 0;
  for (int i = 0; i < n; i++)
    s += exp((double)logits[i] - mx);
  for (int i = 0; i < n; i++)
    probs[i] = (float)(exp((double)logits[i] - mx) / s);
  return arg;
}

int mp_cmd_classify(int argc, char **argv) {
  mp_cli_run_opts ro;
  int rc = mp_cli_run_opts_read("classify", argc, argv, &ro, k_help, 1);
  if (rc >= 0) return rc;
  char **lines;
  size_t n;
  if (mp_cli_read_lines("classify", stdin, &lines, &n)) return MP_EXIT_ERROR;
  const char **a = (const char **)lines, **b = NULL;
  const char **pa = NULL, **pb = NULL;
  if (ro.pair) {
    if (mp_cli_split_pairs("classify", lines, n, &pa, &pb)) {
      mp_cli_free_lines(lines, n);
      return MP_EXIT_ERROR;
    }
    a = pa, b = pb;
  }
  mp_model *m;
  mp_model_options mo = {
      .threads = ro.threads, .compute = ro.compute, .device = ro.device, .device_dtype = ro.device_dtype};
  mp_status st = mp_model_open(ro.model, &mo, &m);
  if (st) {
    free(pa), free(pb);
    mp_cli_free_lines(lines, n);
    return mp_cli_fail("classify", st);
  }
  const mp_model_config *c = mp_model_get_config(m);
  int L = c->num_labels;
  float *logits = malloc((n ? n : 1) * (size_t)(L ? L : 1) * sizeof(float));
  st = logits ? mp_model_classify(m, n, a, b, &ro.run, logits, NULL) : MP_ERR_NOMEM;
  if (!st) {
    mp_sb sb;
    mp_sb_init(&sb);
    float probs[MP_MAX_LABELS];
    for (size_t i = 0; i < n; i++) {
      const float *lg = logits + i * (size_t)L;
      int arg = mp_cli_softmax_argmax(lg, L, probs);
      const char *lab = c->id2label[arg] ? c->id2label[arg] : "?";
      mp_sb_clear(&sb);
      if (ro.json) {
        mp_sb_puts(&sb, "{\"label\":");
        mp_sb_json_str(&sb, lab, strlen(lab));
        mp_sb_puts(&sb, ",\"score\":");
        mp_sb_json_f32(&sb, probs[arg]);
        mp_sb_puts(&sb, ",\"logits\":[");
        for (int k = 0; k < L; k++) {
          if (k) mp_sb_putc(&sb, ',');
          mp_sb_json_f32(&sb, lg[k]);
        }
        mp_sb_puts(&sb, "]}\n");
      } else {
        mp_sb_printf(&sb, "%s\t%.6f\n", lab, probs[arg]);
      }
      fwrite(sb.buf, 1, sb.len, stdout);
    }
    mp_sb_free(&sb);
  }
  free(logits);
  mp_model_close(m);
  free(pa), free(pb);
  mp_cli_free_lines(lines, n);
  return st ? mp_cli_fail("classify", st) : MP_EXIT_OK;
}
