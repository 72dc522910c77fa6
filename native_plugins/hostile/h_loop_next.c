/* Hostile fixture: an endless source whose next() spins in an endless busy loop (100% of a
** CPU, never returns) on its 3rd call.
**
** Rows: x int64, 4 rows per batch (0, 1, 2, ... across the batches of an instance). Every
** next() returns a batch at once (never PLUTINO_AGAIN, never PLUTINO_EOF); the config is
** ignored. next() calls are counted per process (a static counter in the .so, shared by every
** instance): calls 1 and 2 return a batch; the 3rd never returns. */
#include <stdatomic.h>

#include "plutino/plutino_helpers.h"

#define ROWS 4

static atomic_int calls;

typedef struct counter {
  int64_t next_x;
} counter;

static plutino_status counter_create(plutino_context* ctx, const char* config_json, void** out) {
  (void)config_json;
  *out = calloc(1, sizeof(counter));
  if (!*out) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  return PLUTINO_OK;
}

static plutino_status counter_schema(plutino_context* ctx, void* instance, struct ArrowSchema* out) {
  (void)ctx;
  (void)instance;
  if (plutino_schema_struct(out, "", 1) != PLUTINO_OK) return PLUTINO_NOMEM;
  if (plutino_schema_make(out->children[0], "l", "x") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

/* One batch of ROWS rows of x into *out. */
static plutino_status counter_batch(plutino_context* ctx, counter* c, struct ArrowArray* out) {
  int64_t* x;
  int64_t i;
  if (plutino_batch_struct(ctx, out, ROWS, 1) != PLUTINO_OK) return PLUTINO_NOMEM;
  x = plutino_result_i64(ctx, out->children[0], ROWS);
  if (!x) { out->release(out); return PLUTINO_NOMEM; }
  for (i = 0; i < ROWS; i++) x[i] = c->next_x++;
  return PLUTINO_OK;
}

static plutino_status loop_next(plutino_context* ctx, void* instance, int64_t timeout_us,
                                struct ArrowArray* out) {
  (void)timeout_us;
  if (atomic_fetch_add(&calls, 1) + 1 >= 3) {
    volatile int spin = 1; /* volatile: a loop the compiler may not assume ends */
    while (spin) {
    }
  }
  return counter_batch(ctx, (counter*)instance, out);
}

static void counter_close(plutino_context* ctx, void* instance) {
  (void)ctx;
  free(instance);
}

static const plutino_source_api source = {sizeof(plutino_source_api), counter_create, counter_schema,
                                          NULL, loop_next, NULL, counter_close};

PLUTINO_DECLARE_SOURCE("h_loop_next", "1.0.0", &source)
