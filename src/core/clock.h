/* The one monotonic clock the library and the CLI time things with. */
#ifndef MP_CORE_CLOCK_H
#define MP_CORE_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin: use differences only). */
double mp_now_s(void);
#endif
