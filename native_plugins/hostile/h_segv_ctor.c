/* Hostile fixture: a well-formed function library (h_segv_ctor(x) -> x, an identity over
** int64 or float64; valid tag, entry and descriptor) with a constructor that crashes with
** SIGSEGV (a write through a NULL pointer). dlopen runs constructors, so loading the plugin
** kills the process before the host ever calls its entry; inspecting its tag (which runs no
** plugin code) still succeeds. */

#include "plutino/plutino_helpers.h"

#define NAME "h_segv_ctor"

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

static plutino_status id_call(plutino_context* ctx, void* state, int32_t nargs,
                              const struct ArrowArray* const* args,
                              const struct ArrowSchema* const* types, int64_t n,
                              struct ArrowArray* out, struct ArrowSchema* out_type) {
  (void)state;
  (void)nargs;
  return id_copy(ctx, args[0], types[0], n, out, out_type);
}

/* ---------------------------------------------------------------- the hostile part */

/* Runs inside dlopen(), before plutino_plugin_v1 can be looked up. */
__attribute__((constructor)) static void segv_at_load(void) {
  volatile int* volatile p = NULL; /* volatile twice: the compiler can neither drop nor "trap" it */
  *p = 42;
}

static const plutino_function id_fn = {
    sizeof(plutino_function), 0, NAME, 1, 1, id_validate, NULL, NULL, id_call, NULL};

static const plutino_function* const functions[] = {&id_fn};

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", functions)
