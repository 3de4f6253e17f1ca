/* Small string helpers (see str.h). */
#include "core/str.h"

#include <string.h>

int mp_str_ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}
