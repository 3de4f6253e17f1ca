/* dataset_dump: loads a dataset through src/eval/dataset*.c and prints it as JSON Lines (one
 * header object, then one object per example). Used by tests/py/test_datasets.py.
 *
 *   dataset_dump [--key K] [--path P] [--hf ORG/NAME] [--config C] [--split S] [--format F]
 *                [--text-a F] [--text-b F] [--label F] [--score F] [--labels a,b,c]
 *                [--cols A,B,L,S] [--header 0|1] [--quoting 0|1] [--max-samples N] [--seed S]
 * Exit 0 ok; 3 with the error message on stderr. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "eval/dataset.h"

int main(int argc, char **argv) {
  mp_dataset_def d;
  mp_dataset_def_init(&d);
  size_t max_samples = 0;
  uint64_t seed = 0;
  const char *names[64];
  size_t n_names = 0;
  char *labels_copy = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--key"))
      d.key = v;
    else if (!strcmp(k, "--path"))
      d.path = v;
    else if (!strcmp(k, "--hf"))
      d.hf_dataset = v;
    else if (!strcmp(k, "--config"))
      d.config = v;
    else if (!strcmp(k, "--split"))
      d.split = v;
    else if (!strcmp(k, "--format")) {
      if (mp_ds_format_parse(v, &d.format) != MP_OK) {
        fprintf(stderr, "%s\n", mp_last_error());
        return 2;
      }
    } else if (!strcmp(k, "--text-a"))
      d.text_a = v;
    else if (!strcmp(k, "--text-b"))
      d.text_b = v;
    else if (!strcmp(k, "--label"))
      d.label = v;
    else if (!strcmp(k, "--score"))
      d.score = v;
    else if (!strcmp(k, "--labels")) {
      labels_copy = strdup(v);
      for (char *t = strtok(labels_copy, ","); t && n_names < 64; t = strtok(NULL, ","))
        names[n_names++] = t;
      d.label_names = names;
      d.n_label_names = n_names;
    } else if (!strcmp(k, "--cols")) {
      sscanf(v, "%d,%d,%d,%d", &d.text_a_col, &d.text_b_col, &d.label_col, &d.score_col);
    } else if (!strcmp(k, "--header"))
      d.header = atoi(v);
    else if (!strcmp(k, "--quoting"))
      d.quoting = atoi(v);
    else if (!strcmp(k, "--max-samples"))
      max_samples = (size_t)strtoull(v, NULL, 10);
    else if (!strcmp(k, "--seed"))
      seed = strtoull(v, NULL, 10);
    else {
      fprintf(stderr, "dataset_dump: unknown option %s\n", k);
      return 2;
    }
  }
  mp_dataset *ds = NULL;
  if (mp_dataset_load(&d, &ds) != MP_OK || mp_dataset_sample(ds, max_samples, seed) != MP_OK) {
    fprintf(stderr, "%s\n", mp_last_error());
    mp_dataset_free(ds);
    free(labels_copy);
    return 3;
  }
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_puts(&sb, "{\"name\":");
  mp_sb_json_str(&sb, ds->name, strlen(ds->name));
  mp_sb_printf(
      &sb,
      ",\"format\":\"%s\",\"n\":%zu,\"n_total\":%zu,\"n_dropped\":%zu,\"has_score\":%d,\"has_pairs\":%d,\"labels\":[",
      mp_ds_format_name(ds->format), ds->n, ds->n_total, ds->n_dropped, ds->has_score, ds->has_pairs);
  for (size_t i = 0; i < ds->n_labels; i++) {
    if (i) mp_sb_putc(&sb, ',');
    mp_sb_json_str(&sb, ds->labels[i], strlen(ds->labels[i]));
  }
  mp_sb_puts(&sb, "],\"path\":");
  mp_sb_json_str(&sb, ds->path, strlen(ds->path));
  mp_sb_puts(&sb, "}\n");
  fwrite(sb.buf, 1, sb.len, stdout);
  for (size_t i = 0; i < ds->n; i++) {
    mp_sb_clear(&sb);
    const mp_example *e = &ds->ex[i];
    mp_sb_puts(&sb, "{\"a\":");
    mp_sb_json_str(&sb, e->text_a, strlen(e->text_a));
    if (e->text_b) {
      mp_sb_puts(&sb, ",\"b\":");
      mp_sb_json_str(&sb, e->text_b, strlen(e->text_b));
    }
    mp_sb_printf(&sb, ",\"label\":%d,\"score\":", e->label);
    mp_sb_json_f64(&sb, e->score);
    mp_sb_printf(&sb, ",\"line\":%u,\"index\":%u}\n", e->line, e->index);
    fwrite(sb.buf, 1, sb.len, stdout);
  }
  mp_sb_free(&sb);
  mp_dataset_free(ds);
  free(labels_copy);
  return 0;
}
