/* Loader and engine fixture: a function library whose functions break the contract's rules
** for results, each in one way. The host must turn every case into an error of that call
** (counted in the rule's status), never into a crash or a wrong row.
**
**   short_result(x)  returns one row fewer than it was given (no validate(): the host learns
**                    the type from the result)
**   wrong_type(x)    validate() promises float64, call() returns int64
**   no_result(x)     returns PLUTINO_OK without writing a result
*/
#include "fixture.h"

PLUTINO_TEST_MARKER("function_bad_results")

static plutino_status short_result_call(plutino_context* ctx, void* state, int32_t nargs,
                                        const struct ArrowArray* const* args,
                                        const struct ArrowSchema* const* types, int64_t n,
                                        struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t rows = n > 0 ? n - 1 : 0, i;
  int64_t* res;
  (void)state, (void)nargs, (void)args, (void)types;
  res = plutino_result_i64(ctx, out, rows);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < rows; i++) res[i] = i;
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

static plutino_status wrong_type_validate(plutino_context* ctx, int32_t nargs,
                                          const struct ArrowSchema* const* arg_types,
                                          struct ArrowSchema* out_type) {
  (void)ctx, (void)nargs, (void)arg_types;
  return plutino_schema_make(out_type, "g", "");
}

static plutino_status wrong_type_call(plutino_context* ctx, void* state, int32_t nargs,
                                      const struct ArrowArray* const* args,
                                      const struct ArrowSchema* const* types, int64_t n,
                                      struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t* res;
  int64_t i;
  (void)state, (void)nargs, (void)args, (void)types;
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) res[i] = i;
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

static plutino_status no_result_call(plutino_context* ctx, void* state, int32_t nargs,
                                     const struct ArrowArray* const* args,
                                     const struct ArrowSchema* const* types, int64_t n,
                                     struct ArrowArray* out, struct ArrowSchema* out_type) {
  (void)ctx, (void)state, (void)nargs, (void)args, (void)types, (void)n, (void)out, (void)out_type;
  return PLUTINO_OK;
}

static const plutino_function short_result = {
    sizeof(plutino_function), 0, "short_result", 1, 1, NULL, NULL, NULL, short_result_call, NULL};
static const plutino_function wrong_type = {
    sizeof(plutino_function), 0, "wrong_type", 1, 1, wrong_type_validate, NULL, NULL, wrong_type_call, NULL};
static const plutino_function no_result = {
    sizeof(plutino_function), 0, "no_result", 1, 1, NULL, NULL, NULL, no_result_call, NULL};

static const plutino_function* const functions[] = {&short_result, &wrong_type, &no_result};

PLUTINO_DECLARE_FUNCTIONS("function_bad_results", "1.0.0", functions)
