/*
** tiny.c -- the smallest function plugin: plus_one(x) over int64.
**
**   SELECT plus_one(a) FROM demo      -- a + 1, null stays null
**
** The contract's tests build it three ways -- with gcc directly, with the contract's CMake
** package from the source tree, and with the CMake package of a pip-installed plutino-contract
** -- and check its ABI tag, its exported symbols and that it computes.
*/
#include "plutino/plutino.h"
#include "plutino/plutino_helpers.h"

#ifndef PLUTINO_PLUGIN_VERSION
#define PLUTINO_PLUGIN_VERSION "0.1.0"
#endif

static plutino_status plus_one_call(plutino_context* ctx, void* state, int32_t nargs,
                                    const struct ArrowArray* const* args,
                                    const struct ArrowSchema* const* types, int64_t n,
                                    struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* x = args[0];
  const int64_t* in;
  int64_t* res;
  int64_t i;
  (void)state;
  (void)nargs;
  if (!plutino_format_is(types[0], "l"))
    return plutino_set_error(ctx, "plus_one: argument must be int64 ('l'), got '%s'",
                             types[0]->format), PLUTINO_INVALID;
  in = plutino_i64(x);
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(x, i);
    if (plutino_is_valid(x, r)) {
      res[i] = in[r] + 1;
    } else {
      res[i] = 0;
      if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) {
        out->release(out);
        return PLUTINO_NOMEM;
      }
    }
  }
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) {
    out->release(out); /* a failed call leaves *out released */
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

static const plutino_function plus_one = {
    sizeof(plutino_function), 0, "plus_one", 1, 1, NULL, NULL, NULL, plus_one_call, NULL};

static const plutino_function* const tiny_functions[] = {&plus_one};

PLUTINO_DECLARE_FUNCTIONS("tiny", PLUTINO_PLUGIN_VERSION, tiny_functions)
