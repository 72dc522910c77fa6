/* Hostile fixture: a sink that accepts whatever it is given (any config, any batch; it only
** counts rows) and crashes the process with SIGSEGV (a write through a NULL pointer) in
** write() on its 3rd call.
**
** write() calls are counted per process (a static counter in the .so, shared by every
** instance): calls 1 and 2 return PLUTINO_OK; the 3rd never returns. */
#include <stdatomic.h>

#include "plutino/plutino_helpers.h"

static atomic_int calls;

typedef struct tally {
  int64_t rows;
} tally;

static plutino_status tally_create(plutino_context* ctx, const char* config_json, void** out) {
  (void)config_json;
  *out = calloc(1, sizeof(tally));
  if (!*out) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  return PLUTINO_OK;
}

static plutino_status segv_write(plutino_context* ctx, void* instance, const struct ArrowSchema* schema,
                                 const struct ArrowArray* batch) {
  (void)ctx;
  (void)schema;
  if (atomic_fetch_add(&calls, 1) + 1 >= 3) {
    volatile int* volatile p = NULL; /* volatile twice: the compiler can neither drop nor "trap" it */
    *p = 42;
  }
  ((tally*)instance)->rows += batch->length;
  return PLUTINO_OK;
}

static void tally_close(plutino_context* ctx, void* instance) {
  (void)ctx;
  free(instance);
}

static const plutino_sink_api sink = {sizeof(plutino_sink_api), tally_create, NULL, segv_write,
                                      NULL, NULL, tally_close};

PLUTINO_DECLARE_SINK("h_segv_write", "1.0.0", &sink)
