/* Hostile fixture: h_alloc(x) -> x, an identity over int64 or float64 that tries to eat
** 10 GiB of memory on the 3rd and every later call: malloc(10 GiB), then memset all of it
** (touching every page), free it and return x. When malloc returns NULL the call fails with
** PLUTINO_NOMEM and the message "out of memory: could not allocate 10 GiB". Under a memory
** limit (cgroup, OOM killer) the process may instead be killed while touching the pages.
**
** Calls are counted per process (a static counter in the .so, shared by every instance):
** calls 1 and 2 return their argument unchanged without allocating. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plutino/plutino_helpers.h"

#define NAME "h_alloc"

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

#define GIB ((size_t)1 << 30)

/* Allocate 10 GiB and write every byte of it (every page becomes resident), then free it.
** Returns 0 when malloc refuses (an address-space limit, overcommit off, a 32-bit build). */
static int eat_10_gib(void) {
  char* volatile p;
  if (SIZE_MAX / GIB < 10) return 0;
  p = (char*)malloc(10 * GIB);
  if (!p) return 0;
  memset(p, 'x', 10 * GIB);
  __asm__ __volatile__("" : : "r"(p) : "memory"); /* keep the compiler from eliding the memset */
  free(p);
  return 1;
}

static plutino_status alloc_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args,
                                 const struct ArrowSchema* const* types, int64_t n,
                                 struct ArrowArray* out, struct ArrowSchema* out_type) {
  (void)state;
  (void)nargs;
  if (atomic_fetch_add(&calls, 1) + 1 >= 3 && !eat_10_gib())
    return plutino_set_error(ctx, "out of memory: could not allocate 10 GiB"), PLUTINO_NOMEM;
  return id_copy(ctx, args[0], types[0], n, out, out_type);
}

static const plutino_function alloc_fn = {
    sizeof(plutino_function), PLUTINO_FN_VOLATILE, NAME, 1, 1, id_validate, NULL, NULL, alloc_call, NULL};

static const plutino_function* const functions[] = {&alloc_fn};

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", functions)
