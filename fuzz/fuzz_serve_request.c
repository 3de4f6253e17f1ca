/* libFuzzer target: the request bodies of `mlxport serve` (src/serve/serve_request.c). The first
 * byte picks the route (/v1/embeddings, /embed, /predict, /rerank, /zero-shot); the rest is the
 * body. A parse either succeeds with a consistent request or fails with a message and a 4xx code. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "serve/serve_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size) return 0;
  mp_serve_route route = (mp_serve_route)(data[0] % MP_ROUTE_N_POST);
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_serve_req r;
  mp_serve_limits lim = {64, 64, 1 << 20};
  char err[512];
  int code = mp_serve_decode(route, (const char *)data + 1, size - 1, &lim, &a, &r, err, sizeof err);
  if (code) {
    if (code < 400 || code > 599 || !err[0]) abort();
  } else {
    if (!r.n || r.n > lim.max_inputs) abort();
    for (size_t i = 0; i < r.n; i++) {
      if (r.ids) {
        for (size_t k = 0; k < r.n_ids[i]; k++)
          if (r.ids[i][k] < 0) abort();
      } else if (!r.texts[i] || strlen(r.texts[i]) > lim.max_text_bytes) {
        abort();
      }
      if (r.pairs && !r.pairs[i]) abort();
    }
    if (route == MP_ROUTE_ZERO_SHOT && (!r.n_labels || !r.hypothesis_template || !strstr(r.hypothesis_template, "{}")))
      abort();
  }
  mp_arena_free(&a);
  return 0;
}
