/* Small helpers on NUL-terminated strings that several modules need. */
#ifndef MP_CORE_STR_H
#define MP_CORE_STR_H
#include <stddef.h>

/* 1 when s ends with suffix (every string ends with ""). */
int mp_str_ends_with(const char *s, const char *suffix);
/* Levenshtein distance (for did-you-mean); 99 when a string is longer than 64 bytes. */
size_t mp_str_edit_distance(const char *a, const char *b);
#endif
