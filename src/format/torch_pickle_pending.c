/* Placeholder for the PyTorch checkpoint reader (src/format/torch_pickle.h) until the torch
 * helper lands src/format/torch_pickle.c, which deletes this file. Every entry point refuses
 * with MP_ERR_UNSUPPORTED so the weights table builds and reports the limitation clearly. */
#include "core/error.h"
#include "format/torch_pickle.h"

mp_status mp_torch_open(const char *path, mp_torch_file **out) {
  *out = NULL;
  return mp_err(MP_ERR_UNSUPPORTED, "%s: PyTorch checkpoints are not readable yet", path ? path : "(null)");
}
void mp_torch_close(mp_torch_file *tf) { (void)tf; }
size_t mp_torch_count(const mp_torch_file *tf) {
  (void)tf;
  return 0;
}
const mp_tensor *mp_torch_at(const mp_torch_file *tf, size_t i) {
  (void)tf;
  (void)i;
  return NULL;
}
const mp_tensor *mp_torch_find(const mp_torch_file *tf, const char *name) {
  (void)tf;
  (void)name;
  return NULL;
}
mp_status mp_torch_check_pickle(const void *data, size_t size, const char *what) {
  (void)data;
  (void)size;
  return mp_err(MP_ERR_UNSUPPORTED, "%s: PyTorch checkpoints are not readable yet", what ? what : "<memory>");
}
