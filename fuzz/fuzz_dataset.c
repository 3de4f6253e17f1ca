/* libFuzzer target: the dataset text loaders (GLUE TSV, header-less TSV, CSV with quoting,
 * JSON Lines) on arbitrary bytes. The first byte picks the layout; the rest is the file, written
 * to a per-process temporary file because the loader reads files. Seeds: fuzz/corpus/fuzz_dataset/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/dataset.h"

static const char *const csv_names[] = {"negative", "positive"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static char path[4][64];
  static const char *const ext[4] = {"tsv", "tsv", "jsonl", "csv"};
  int mode = data[0] & 3;
  if (!path[mode][0]) snprintf(path[mode], sizeof path[mode], "/tmp/mp-fuzz-dataset-%d.%s", (int)getpid(), ext[mode]);
  FILE *f = fopen(path[mode], "wb"); /* plain write: an atomic write's fsync would dominate */
  if (!f) return 0;
  size_t wrote = fwrite(data + 1, 1, size - 1, f);
  if (fclose(f) != 0 || wrote != size - 1) return 0;
  mp_dataset_def d;
  mp_dataset_def_init(&d);
  d.path = path[mode];
  switch (mode) {
  case 0: d.key = (data[0] & 4) ? "sst2" : "stsb"; break;
  case 1: d.key = (data[0] & 4) ? "stsb_original" : "mrpc"; break;
  case 2: d.key = (data[0] & 4) ? "mnli" : "fever_nli"; break;
  default:
    d.text_a = "text";
    d.text_b = (data[0] & 4) ? "b|text2" : NULL;
    d.label = "label";
    d.label_names = csv_names;
    d.n_label_names = 2;
    d.quoting = (data[0] & 8) ? 0 : 1;
    break;
  }
  mp_dataset *ds = NULL;
  if (mp_dataset_load(&d, &ds) == MP_OK) {
    mp_dataset_sample(ds, 3, data[0]);
    size_t counts[4];
    if (ds->n_labels <= 4) mp_dataset_label_counts(ds, counts);
  }
  mp_dataset_free(ds);
  return 0;
}
