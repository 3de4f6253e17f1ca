/* Small helpers on NUL-terminated strings that several modules need. */
#ifndef MP_CORE_STR_H
#define MP_CORE_STR_H

/* 1 when s ends with suffix (every string ends with ""). */
int mp_str_ends_with(const char *s, const char *suffix);
#endif
