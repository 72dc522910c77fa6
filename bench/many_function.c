/*
** many_function.c -- one small function library, built under many names for the start-up
** benchmark (bench/load_plugin.py installs 100 of them into one data directory).
**
** Each build gets its plugin name and its one function's name from the compiler:
**
**   cc -O2 -shared -fPIC -fvisibility=hidden -DPLUGIN_NAME='"bench_fn_007"' \
**      -DFUNCTION_NAME='"bench_fn_007_twice"' many_function.c -o bench_fn_007.so
**
** so that the registry accepts them side by side (function names must not collide). The
** function, FUNCTION_NAME(x float64) -> float64, is x * 2: as much code as a small real plugin.
*/
#include "plutino/plutino_helpers.h"

#ifndef PLUGIN_NAME
#error "define PLUGIN_NAME, e.g. -DPLUGIN_NAME='\"bench_fn_0\"'"
#endif
#ifndef FUNCTION_NAME
#error "define FUNCTION_NAME, e.g. -DFUNCTION_NAME='\"bench_fn_0_twice\"'"
#endif

static plutino_status twice_validate(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* types,
                                     struct ArrowSchema* out) {
  (void)nargs;
  if (!plutino_format_is(types[0], "g"))
    return plutino_set_error(ctx, "%s(x) needs a float64 argument, got Arrow type '%s'; cast it",
                             FUNCTION_NAME, types[0]->format), PLUTINO_INVALID;
  return plutino_schema_make(out, "g", "");
}

static plutino_status twice_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                 int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* x = args[0];
  const double* in = plutino_f64(x);
  double* res;
  int64_t i;
  (void)state, (void)nargs, (void)types, (void)out_type;
  if (!(res = plutino_result_f64(ctx, out, n))) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(x, i);
    if (plutino_is_valid(x, r)) res[i] = in[r] * 2;
    else if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) {
      out->release(out);
      return PLUTINO_NOMEM;
    }
  }
  return PLUTINO_OK;
}

static const plutino_function twice = {
    sizeof(plutino_function), 0, FUNCTION_NAME, 1, 1, twice_validate, NULL, NULL, twice_call, NULL,
};

static const plutino_function* const functions[] = {&twice};

PLUTINO_DECLARE_FUNCTIONS(PLUGIN_NAME, "1.0.0", functions)
