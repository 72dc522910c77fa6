/* Engine fixture: a source that never returns data. Every next() waits out its timeout (at
** most 100 ms) and returns PLUTINO_AGAIN, as a source whose device or broker stays silent
** does. Its status is "connected". Rows, had there been any: n int64. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "fixture.h"

PLUTINO_TEST_MARKER("source_silent")

static plutino_status silent_next(plutino_context* ctx, void* instance, int64_t timeout_us,
                                  struct ArrowArray* out) {
  int64_t wait_us = timeout_us < 100000 ? timeout_us : 100000;
  struct timespec ts;
  (void)ctx, (void)instance, (void)out;
  if (wait_us > 0) {
    ts.tv_sec = (time_t)(wait_us / 1000000);
    ts.tv_nsec = (long)(wait_us % 1000000) * 1000;
    nanosleep(&ts, NULL);
  }
  return PLUTINO_AGAIN;
}

static int32_t silent_status(plutino_context* ctx, void* instance) {
  (void)ctx, (void)instance;
  return PLUTINO_CONN_CONNECTED;
}

static const plutino_source_api source = {sizeof(plutino_source_api), fx_create, fx_schema, NULL,
                                          silent_next, silent_status, fx_close};

PLUTINO_DECLARE_SOURCE("source_silent", "1.0.0", &source)
