/* examples/embed.c: sentence embeddings with libmlxport, as a user program builds them:
 *   cc embed.c $(pkg-config --cflags --libs mlxport) -o embed
 *   ./embed sentence-transformers/all-MiniLM-L6-v2 "A man is eating food." "A man is eating pasta."
 * Prints the dimension, the first values of each embedding and the cosine of the first two. */
#include <mlxport.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL TEXT...\n", argv[0]);
    return 2;
  }
  if (mlxport_check_version(MLXPORT_VERSION_NUMBER) != MLXPORT_OK) {
    fprintf(stderr, "%s\n", mlxport_last_error());
    return 1;
  }
  mlxport_model *model;
  if (mlxport_model_open(argv[1], NULL, &model) != MLXPORT_OK) {
    fprintf(stderr, "error: %s\n", mlxport_last_error());
    return 1;
  }
  size_t n = (size_t)argc - 2, dim = mlxport_model_dim(model);
  float *emb = malloc(n * dim * sizeof *emb); /* the caller owns the output */
  if (!emb || mlxport_model_embed(model, n, (const char *const *)argv + 2, 1, emb) != MLXPORT_OK) {
    fprintf(stderr, "error: %s\n", emb ? mlxport_last_error() : "out of memory");
    free(emb);
    mlxport_model_close(model);
    return 1;
  }
  printf("libmlxport %s, dim %zu\n", mlxport_version(), dim);
  for (size_t i = 0; i < n; i++)
    printf("%zu: [%.6f, %.6f, %.6f, ...]\n", i, emb[i * dim], emb[i * dim + 1], emb[i * dim + 2]);
  if (n >= 2) {
    double dot = 0;
    for (size_t j = 0; j < dim; j++)
      dot += (double)emb[j] * emb[dim + j];
    printf("cosine(0, 1) = %.6f\n", dot);
  }
  free(emb);
  mlxport_model_close(model);
  return 0;
}
