/* examples/convert.c: convert a Hugging Face model to a 4-bit MLX folder, with progress:
 *   cc convert.c $(pkg-config --cflags --libs mlxport) -o convert
 *   ./convert sentence-transformers/all-MiniLM-L6-v2 minilm-mlx-4bit
 * Prints a progress line per tenth of the tensors, then the converter's JSON summary. */
#include <mlxport.h>
#include <stdio.h>

static void progress(void *user, size_t done, size_t total, const char *tensor) {
  (void)user;
  if (done == total || done % (total / 10 + 1) == 0) fprintf(stderr, "[%zu/%zu] %s\n", done, total, tensor);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SOURCE OUTPUT_FOLDER\n", argv[0]);
    return 2;
  }
  mlxport_convert_options o;
  mlxport_convert_options_init(&o);
  o.source = argv[1];
  o.output = argv[2];
  o.quantize = 1;
  o.bits = 4;
  o.group_size = 64;
  o.progress = progress;
  char *summary = NULL;
  if (mlxport_convert(&o, &summary) != MLXPORT_OK) {
    fprintf(stderr, "error: %s\n", mlxport_last_error());
    return 1;
  }
  printf("%s\n", summary);
  mlxport_free(summary);
  return 0;
}
