/* examples/classify_pair.c: classify a premise/hypothesis pair with an NLI model:
 *   cc classify_pair.c $(pkg-config --cflags --libs mlxport) -o classify_pair
 *   ./classify_pair MODEL "A man is playing a guitar." "A person plays music."
 * Prints each label with its probability, then the predicted label. */
#include <math.h>
#include <mlxport.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL PREMISE HYPOTHESIS\n", argv[0]);
    return 2;
  }
  mlxport_model *model;
  if (mlxport_model_open(argv[1], NULL, &model) != MLXPORT_OK) {
    fprintf(stderr, "error: %s\n", mlxport_last_error());
    return 1;
  }
  size_t k = mlxport_model_num_labels(model);
  float logits[64];
  const char *premise = argv[2], *hypothesis = argv[3];
  if (k == 0 || k > 64 || mlxport_model_classify(model, 1, &premise, &hypothesis, logits) != MLXPORT_OK) {
    fprintf(stderr, "error: %s\n", k ? mlxport_last_error() : "the model has no classification head");
    mlxport_model_close(model);
    return 1;
  }
  double mx = logits[0], sum = 0;
  size_t best = 0;
  for (size_t i = 1; i < k; i++)
    if (logits[i] > mx) mx = logits[i], best = i;
  for (size_t i = 0; i < k; i++)
    sum += exp(logits[i] - mx);
  for (size_t i = 0; i < k; i++)
    printf("%-15s %.4f\n", mlxport_model_label(model, i), exp(logits[i] - mx) / sum);
  printf("prediction: %s\n", mlxport_model_label(model, best));
  mlxport_model_close(model);
  return 0;
}
