/* Engine fixture (well-formed): two functions that show how often the host calls a function
** whose arguments are all constants. Each returns, in every row, how many times call() has
** run on its per-use state (1 on the first call, 2 on the second, ...); the argument, if
** any, is ignored.
**
**   calls_stable([x])    no flags: the same arguments give the same result, so the host may
**                        compute a call with constant arguments once per rule run
**   calls_volatile([x])  PLUTINO_FN_VOLATILE: called for every batch
*/
#include "fixture.h"

PLUTINO_TEST_MARKER("function_volatility")

static plutino_status count_validate(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* arg_types,
                                     struct ArrowSchema* out_type) {
  (void)ctx, (void)nargs, (void)arg_types;
  return plutino_schema_make(out_type, "l", "");
}

static plutino_status count_create(plutino_context* ctx, void** out_state) {
  int64_t* calls = (int64_t*)calloc(1, sizeof *calls);
  if (!calls) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  *out_state = calls;
  return PLUTINO_OK;
}

static void count_destroy(plutino_context* ctx, void* state) {
  (void)ctx;
  free(state);
}

static plutino_status count_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                 int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t* calls = (int64_t*)state;
  int64_t i, *res;
  (void)nargs, (void)args, (void)types, (void)out_type;
  if (!(res = plutino_result_i64(ctx, out, n))) return PLUTINO_NOMEM;
  *calls += 1;
  for (i = 0; i < n; i++) res[i] = *calls;
  return PLUTINO_OK;
}

static const plutino_function calls_stable = {sizeof(plutino_function), 0, "calls_stable", 0, 1,
                                              count_validate, count_create, count_destroy, count_call, NULL};
static const plutino_function calls_volatile = {sizeof(plutino_function), PLUTINO_FN_VOLATILE, "calls_volatile", 0, 1,
                                                count_validate, count_create, count_destroy, count_call, NULL};

static const plutino_function* const functions[] = {&calls_stable, &calls_volatile};

PLUTINO_DECLARE_FUNCTIONS("function_volatility", "1.0.0", functions)
