/*
** hostile_identity.h -- the identity function that every hostile function fixture wraps
** (native_plugins/hostile/).
**
** Not an example to follow: these plugins exist to attack the process that loads them.
**
** A function fixture is one function, NAME(x) -> x over int64 or float64: validate() gives
** x's type, and call() returns x unchanged, its nulls as nulls and a constant repeated. This
** header is that identity, so the fixture that includes it holds only its misbehaviour and
** its declaration.
**
** Before including it, the fixture defines
**   NAME                 the plugin's and the function's name (a string literal)
**   HOSTILE_FN_FLAGS     the function's flags: PLUTINO_FN_VOLATILE (the engine never
**                        constant-folds it) or 0
**   HOSTILE_BEFORE_CALL  (optional, empty) to have its hostile_before_call() run:
**       static plutino_status hostile_before_call(plutino_context* ctx, int call)
**       runs first in every call, before the identity work. `call` numbers the calls of the
**       process, 1, 2, 3, ... (a static counter in the .so, shared by every instance).
**       PLUTINO_OK goes on with the identity; any other status ends the call with it.
**   HOSTILE_AFTER_CALL   (optional, empty) to have its hostile_after_call() run:
**       static void hostile_after_call(int call, struct ArrowArray* out)
**       runs last in a call whose identity work succeeded, on its result.
** and defines the hooks it asked for after including it. Without hooks, calls are the plain
** identity.
**
** It defines hostile_functions[], the one function, for PLUTINO_DECLARE_FUNCTIONS(NAME, ...),
** and HOSTILE_TAG_AND_DESCRIPTOR(VERSION): PLUTINO_DECLARE_FUNCTIONS without its entry (the
** tag as the contract writes it and hostile_descriptor, a descriptor that agrees with it),
** for a fixture whose entry, plutino_plugin_v1(), is hand-written.
*/
#ifndef PLUTINO_HOSTILE_IDENTITY_H
#define PLUTINO_HOSTILE_IDENTITY_H

#if !defined(NAME) || !defined(HOSTILE_FN_FLAGS)
#error "define NAME and HOSTILE_FN_FLAGS before including hostile_identity.h"
#endif

#include <stdatomic.h>
#include <string.h>

#include "plutino/plutino_helpers.h"

/* The including fixture's hooks (see above). */
#ifdef HOSTILE_BEFORE_CALL
static plutino_status hostile_before_call(plutino_context* ctx, int call);
#endif
#ifdef HOSTILE_AFTER_CALL
static void hostile_after_call(int call, struct ArrowArray* out);
#endif

static atomic_int hostile_calls;

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

/* Count the call, give the fixture its turns, copy x. */
static plutino_status id_call(plutino_context* ctx, void* state, int32_t nargs,
                              const struct ArrowArray* const* args,
                              const struct ArrowSchema* const* types, int64_t n,
                              struct ArrowArray* out, struct ArrowSchema* out_type) {
  int call = atomic_fetch_add(&hostile_calls, 1) + 1;
  plutino_status status;
  (void)state;
  (void)nargs;
  (void)call; /* unused by a fixture without hooks */
#ifdef HOSTILE_BEFORE_CALL
  status = hostile_before_call(ctx, call);
  if (status != PLUTINO_OK) return status;
#endif
  status = id_copy(ctx, args[0], types[0], n, out, out_type);
#ifdef HOSTILE_AFTER_CALL
  if (status == PLUTINO_OK) hostile_after_call(call, out);
#endif
  return status;
}

static const plutino_function hostile_fn = {
    sizeof(plutino_function), HOSTILE_FN_FLAGS, NAME, 1, 1, id_validate, NULL, NULL, id_call, NULL};

static const plutino_function* const hostile_functions[] = {&hostile_fn};

/* PLUTINO_DECLARE_FUNCTIONS without its entry: the tag as the contract writes it, and
** hostile_descriptor, a descriptor that agrees with it. The fixture writes the entry. */
#define HOSTILE_TAG_AND_DESCRIPTOR(VERSION)                                                    \
  PLUTINO_TAG_RECORD(PLUTINO_KIND_FUNCTION, NAME, VERSION, PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR); \
  static const plutino_plugin hostile_descriptor = {                                           \
      sizeof(plutino_plugin), PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR, PLUTINO_KIND_FUNCTION,     \
      (uint32_t)(sizeof hostile_functions / sizeof hostile_functions[0]), NAME, VERSION,       \
      PLUTINO_CONTRACT_VERSION, NULL, NULL, hostile_functions}

#endif /* PLUTINO_HOSTILE_IDENTITY_H */
