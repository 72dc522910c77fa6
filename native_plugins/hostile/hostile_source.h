/*
** hostile_source.h -- the endless counting source that every hostile source fixture wraps
** (native_plugins/hostile/).
**
** Not an example to follow: these plugins exist to attack the process that loads them.
**
** Rows: x int64, 4 rows per batch (0, 1, 2, ... across the batches of an instance). Every
** next() returns a batch at once (never PLUTINO_AGAIN, never PLUTINO_EOF); the config is
** ignored. This header is that source, so the fixture that includes it holds only its
** misbehaviour and its declaration.
**
** Before including it, the fixture defines
**   HOSTILE_BEFORE_NEXT   (optional, empty) to have its hostile_before_next() run:
**       static void hostile_before_next(int call)
**       runs first in every next(), before the batch is made. `call` numbers the next() calls
**       of the process, 1, 2, 3, ... (a static counter in the .so, shared by every instance).
**   HOSTILE_BEFORE_CLOSE  (optional, empty) to have its hostile_before_close() run:
**       static void hostile_before_close(void)
**       runs first in close(), before the instance is freed.
** and defines the hooks it asked for after including it.
**
** It defines hostile_source, the source's callbacks, for PLUTINO_DECLARE_SOURCE(name, ...).
*/
#ifndef PLUTINO_HOSTILE_SOURCE_H
#define PLUTINO_HOSTILE_SOURCE_H

#include <stdatomic.h>
#include <stdlib.h>

#include "plutino/plutino_helpers.h"

/* The including fixture's hooks (see above). */
#ifdef HOSTILE_BEFORE_NEXT
static void hostile_before_next(int call);
#endif
#ifdef HOSTILE_BEFORE_CLOSE
static void hostile_before_close(void);
#endif

#define ROWS 4

static atomic_int hostile_calls;

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

/* Count the call, give the fixture its turn, make the batch. */
static plutino_status counter_next(plutino_context* ctx, void* instance, int64_t timeout_us,
                                   struct ArrowArray* out) {
  int call = atomic_fetch_add(&hostile_calls, 1) + 1;
  (void)timeout_us;
  (void)call; /* unused by a fixture without the hook */
#ifdef HOSTILE_BEFORE_NEXT
  hostile_before_next(call);
#endif
  return counter_batch(ctx, (counter*)instance, out);
}

/* Give the fixture its turn, free the instance. */
static void counter_close(plutino_context* ctx, void* instance) {
  (void)ctx;
#ifdef HOSTILE_BEFORE_CLOSE
  hostile_before_close();
#endif
  free(instance);
}

static const plutino_source_api hostile_source = {sizeof(plutino_source_api), counter_create, counter_schema,
                                                  NULL, counter_next, NULL, counter_close};

#endif /* PLUTINO_HOSTILE_SOURCE_H */
