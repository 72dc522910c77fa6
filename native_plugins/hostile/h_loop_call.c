/* Hostile fixture: h_loop_call(x) -> x, an identity over int64 or float64 that spins in an
** endless busy loop (100% of a CPU, never returns, ignores everything but signals) on the 3rd
** call.
**
** Calls are counted per process (a static counter in the .so, shared by every instance):
** calls 1 and 2 return their argument unchanged; the 3rd never returns. */
#include <stdatomic.h>

#include "plutino/plutino_helpers.h"

#define NAME "h_loop_call"

static atomic_int calls;

/* ---------------------------------------------------------------- identity (int64 or float64) */

static int id_type_ok(const struct ArrowSchema* type) {
  return plutino_format_is(type, "l") || plutino_format_is(type, "g");
}

static plutino_status id_validate(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* types,
                                  struct ArrowSchema* out) {
  (void)nargs;
  if (!id_type_ok(types[0]))
    return plutino_set_error(ctx, NAME "(x) needs an int64 or float64 argument, got format '%s'",
                             types[0]->format),
           PLUTINO_INVALID;
  return plutino_schema_make(out, types[0]->format, "");
}

/* Copy x into *out: its 8-byte values bit for bit, its nulls as nulls, a constant repeated. */
static plutino_status id_copy(plutino_context* ctx, const struct ArrowArray* x, const struct ArrowSchema* type,
                              int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  const char* in;
  int64_t* res;
  int64_t i;
  if (!id_type_ok(type))
    return plutino_set_error(ctx, NAME "(x) needs an int64 or float64 argument, got format '%s'", type->format),
           PLUTINO_INVALID;
  in = (const char*)x->buffers[1] + x->offset * 8;
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(x, i);
    res[i] = 0;
    if (plutino_is_valid(x, r)) memcpy(&res[i], in + r * 8, 8);
    else if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  }
  if (plutino_schema_make(out_type, type->format, "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- the hostile part */

static plutino_status loop_call(plutino_context* ctx, void* state, int32_t nargs,
                                const struct ArrowArray* const* args,
                                const struct ArrowSchema* const* types, int64_t n,
                                struct ArrowArray* out, struct ArrowSchema* out_type) {
  (void)state;
  (void)nargs;
  if (atomic_fetch_add(&calls, 1) + 1 >= 3) {
    volatile int spin = 1; /* volatile: a loop the compiler may not assume ends */
    while (spin) {
    }
  }
  return id_copy(ctx, args[0], types[0], n, out, out_type);
}

static const plutino_function loop_fn = {
    sizeof(plutino_function), PLUTINO_FN_VOLATILE, NAME, 1, 1, id_validate, NULL, NULL, loop_call, NULL};

static const plutino_function* const functions[] = {&loop_fn};

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", functions)
