/* mlxport serve: request bodies of the HTTP routes (OpenAI /v1/embeddings, TEI /embed, /predict,
 * /rerank, /zero-shot) parsed from JSON into one flat struct, with 400-style messages naming the
 * offending field. Pure (no I/O, no model): the server and fuzz/fuzz_serve_request.c share it. */
#ifndef MP_SERVE_REQUEST_H
#define MP_SERVE_REQUEST_H
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

typedef enum {
  MP_ROUTE_OPENAI_EMBED = 0, /* POST /v1/embeddings */
  MP_ROUTE_EMBED,            /* POST /embed (TEI) */
  MP_ROUTE_PREDICT,          /* POST /predict (TEI) */
  MP_ROUTE_RERANK,           /* POST /rerank (TEI) */
  MP_ROUTE_ZERO_SHOT,        /* POST /zero-shot */
  MP_ROUTE_N_POST
} mp_serve_route;

typedef struct mp_serve_req {
  mp_serve_route route;
  const char *model;  /* "model" field, or NULL */
  size_t n;           /* inputs */
  const char **texts; /* n texts (first of a pair) */
  const char **pairs; /* NULL, or n second texts (predict pairs, rerank: texts with query first) */
  int32_t **ids;      /* OpenAI token-id input: n arrays (texts NULL until decoded) */
  size_t *n_ids;
  int truncate;         /* truncate: true */
  int normalize;        /* /embed normalize (default 1) */
  int raw_scores;       /* /predict, /rerank */
  int return_text;      /* /rerank */
  int base64;           /* /v1/embeddings encoding_format */
  long long dimensions; /* /v1/embeddings dimensions, -1 when absent */
  int batched;          /* the input was a list (response is a list) */
  const char *query;    /* /rerank */
  size_t n_labels;      /* /zero-shot */
  const char **labels;
  const char *hypothesis_template;
  int multi_label;
} mp_serve_req;

typedef struct mp_serve_limits {
  size_t max_inputs;     /* inputs per request (--max-client-batch) */
  size_t max_labels;     /* zero-shot candidate labels */
  size_t max_text_bytes; /* one text */
} mp_serve_limits;

/* Decodes body[0..len) for `route` (not a *_parse: it answers an HTTP status, not an mp_status). Returns 0 on success,
 * else the HTTP status to answer (400 for malformed JSON or a wrong field, 413 for too many inputs) with a message in
 * err naming the field. Everything allocated lives in the arena. */
int mp_serve_decode(mp_serve_route route, const char *body, size_t len, const mp_serve_limits *lim, mp_arena *a,
                    mp_serve_req *out, char *err, size_t errcap);
#endif
