/* torch_read: dev/bench tool over the PyTorch checkpoint reader (not part of the product).
 *
 *   torch_read FILE      opens FILE with mp_torch_open, reads every byte of every tensor
 *                        (a checksum), and prints one JSON line:
 *                        {"tensors", "bytes", "open_s", "read_s", "checksum"}
 * bench/bench_torch_load.py compares it with torch.load. Exit 3 with the error on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "format/torch_pickle.h"

int main(int argc, char **argv) {
  if (argc != 2 || strcmp(argv[1], "--help") == 0) {
    fprintf(stderr, "usage: torch_read FILE\n");
    return 2;
  }
  double t0 = mp_now_s();
  mp_torch_file *tf;
  if (mp_torch_open(argv[1], &tf) != MP_OK) {
    fprintf(stderr, "torch_read: %s\n", mp_last_error());
    return 3;
  }
  double t1 = mp_now_s();
  uint64_t sum = 0, bytes = 0;
  for (size_t i = 0; i < mp_torch_count(tf); i++) {
    const mp_tensor *t = mp_torch_at(tf, i);
    const uint8_t *p = t->data;
    size_t n = t->nbytes, k = 0;
    for (; k + 8 <= n; k += 8) {
      uint64_t w;
      memcpy(&w, p + k, 8);
      sum += w;
    }
    for (; k < n; k++)
      sum += p[k];
    bytes += n;
  }
  double t2 = mp_now_s();
  printf("{\"tensors\": %zu, \"bytes\": %llu, \"open_s\": %.6f, \"read_s\": %.6f, \"checksum\": %llu}\n",
         mp_torch_count(tf), (unsigned long long)bytes, t1 - t0, t2 - t1, (unsigned long long)sum);
  mp_torch_close(tf);
  return 0;
}
