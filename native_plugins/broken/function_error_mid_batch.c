/* Loader fixture: checked_half(x float64) = x / 2, which fails with a message on the first
** negative value of a batch. Shows that a plugin's error mid-batch becomes a Python
** exception with the plugin's words, and that the next batch works again. */
#include "fixture.h"

PLUTINO_TEST_MARKER("function_error_mid_batch")

static plutino_status checked_half_call(plutino_context* ctx, void* state, int32_t nargs,
                                        const struct ArrowArray* const* args,
                                        const struct ArrowSchema* const* types, int64_t n,
                                        struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* x = args[0];
  const double* in;
  double* res;
  int64_t i;
  (void)state;
  (void)nargs;
  if (!plutino_format_is(types[0], "g"))
    return plutino_set_error(ctx, "checked_half(x) needs a float64, got format '%s'", types[0]->format),
           PLUTINO_INVALID;
  in = plutino_f64(x);
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(x, i);
    if (plutino_is_valid(x, r) && in[r] < 0)
      return plutino_set_error(ctx, "checked_half: row %lld holds %g; only values >= 0 are allowed",
                               (long long)i, in[r]),
             PLUTINO_INVALID;
  }
  res = plutino_result_f64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(x, i);
    if (plutino_is_valid(x, r)) res[i] = in[r] / 2;
    else if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  }
  if (plutino_schema_make(out_type, "g", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

static const plutino_function checked_half = {
    sizeof(plutino_function), 0, "checked_half", 1, 1, NULL, NULL, NULL, checked_half_call, NULL};

static const plutino_function* const functions[] = {&checked_half};

PLUTINO_DECLARE_FUNCTIONS("function_error_mid_batch", "1.0.0", functions)
