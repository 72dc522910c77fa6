/* Loader fixture (well-formed): a function library exercising the host's function adapters.
**
**   double_plus_one(x float64) -> float64   x * 2 + 1; validate() gives the type, call() omits it
**   total(x float64) -> float64             aggregate: the sum of each group (nulls skipped)
**   gil_held() -> int64                     1 per row if the calling thread holds the Python GIL
**   wrong_length(x) -> int64                returns one row too many (a contract violation)
**   say_hello() -> int64                    logs through the host, then 1 per row
**   calls(x) -> int64                       per-use state: how many calls this instance served
**   fail_on(code int64) -> int64            code (row 0) 1: fails with a message; 2: fails without
**                                           one; otherwise returns its argument
*/
#define _GNU_SOURCE
#include <dlfcn.h>

#include "fixture.h"

PLUTINO_TEST_MARKER("good_function")

/* ---------------------------------------------------------------- double_plus_one */

static plutino_status dpo_validate(plutino_context* ctx, int32_t nargs,
                                   const struct ArrowSchema* const* types, struct ArrowSchema* out) {
  (void)nargs;
  if (!plutino_format_is(types[0], "g"))
    return plutino_set_error(ctx, "double_plus_one(x) needs a float64 argument, got format '%s'",
                             types[0]->format),
           PLUTINO_INVALID;
  return plutino_schema_make(out, "g", "");
}

static plutino_status dpo_call(plutino_context* ctx, void* state, int32_t nargs,
                               const struct ArrowArray* const* args,
                               const struct ArrowSchema* const* types, int64_t n,
                               struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* x = args[0];
  const double* in = plutino_f64(x);
  double* res;
  int64_t i;
  (void)state; (void)nargs; (void)types; (void)out_type; /* the type came from validate() */
  res = plutino_result_f64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(x, i);
    if (plutino_is_valid(x, r)) res[i] = in[r] * 2 + 1;
    else if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- total */

static plutino_status total_aggregate(plutino_context* ctx, void* state, int32_t nargs,
                                      const struct ArrowArray* const* args,
                                      const struct ArrowSchema* const* types, int64_t n,
                                      const int32_t* group_ids, int64_t ngroups,
                                      struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* x = args[0];
  const double* in = plutino_f64(x);
  double* res;
  int64_t i;
  (void)state; (void)nargs;
  if (!plutino_format_is(types[0], "g"))
    return plutino_set_error(ctx, "total(x) needs a float64 argument, got format '%s'", types[0]->format),
           PLUTINO_INVALID;
  res = plutino_result_f64(ctx, out, ngroups);
  if (!res) return PLUTINO_NOMEM;
  memset(res, 0, (size_t)ngroups * sizeof(double));
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(x, i);
    if (plutino_is_valid(x, r)) res[group_ids ? group_ids[i] : 0] += in[r];
  }
  if (plutino_schema_make(out_type, "g", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- gil_held */

typedef int (*gil_check_fn)(void);

static plutino_status gil_call(plutino_context* ctx, void* state, int32_t nargs,
                               const struct ArrowArray* const* args,
                               const struct ArrowSchema* const* types, int64_t n,
                               struct ArrowArray* out, struct ArrowSchema* out_type) {
  /* PyGILState_Check() only reads thread state; the host process exports it. */
  gil_check_fn check = (gil_check_fn)dlsym(RTLD_DEFAULT, "PyGILState_Check");
  int64_t* res;
  int64_t i, held;
  (void)state; (void)nargs; (void)args; (void)types;
  if (!check) return plutino_set_error(ctx, "PyGILState_Check not found in the host process"), PLUTINO_ERROR;
  held = check();
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) res[i] = held;
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- wrong_length */

static plutino_status wrong_length_call(plutino_context* ctx, void* state, int32_t nargs,
                                        const struct ArrowArray* const* args,
                                        const struct ArrowSchema* const* types, int64_t n,
                                        struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t* res;
  (void)state; (void)nargs; (void)args; (void)types;
  res = plutino_result_i64(ctx, out, n + 1);
  if (!res) return PLUTINO_NOMEM;
  memset(res, 0, (size_t)(n + 1) * sizeof(int64_t));
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- say_hello */

static plutino_status say_hello_call(plutino_context* ctx, void* state, int32_t nargs,
                                     const struct ArrowArray* const* args,
                                     const struct ArrowSchema* const* types, int64_t n,
                                     struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t* res;
  int64_t i;
  (void)state; (void)nargs; (void)args; (void)types;
  plutino_log(ctx, PLUTINO_LOG_INFO, "hello from %s in rule '%s', %lld rows", ctx->plugin_name, ctx->rule_id,
              (long long)n);
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) res[i] = 1;
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- calls (per-use state) */

static plutino_status calls_create(plutino_context* ctx, void** out_state) {
  int64_t* count = (int64_t*)calloc(1, sizeof(int64_t));
  if (!count) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  *out_state = count;
  return PLUTINO_OK;
}

static void calls_destroy(plutino_context* ctx, void* state) {
  (void)ctx;
  free(state);
}

static plutino_status calls_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args,
                                 const struct ArrowSchema* const* types, int64_t n,
                                 struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t* count = (int64_t*)state;
  int64_t* res;
  int64_t i;
  (void)nargs; (void)args; (void)types;
  *count += 1;
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) res[i] = *count;
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- fail_on */

static plutino_status fail_on_call(plutino_context* ctx, void* state, int32_t nargs,
                                   const struct ArrowArray* const* args,
                                   const struct ArrowSchema* const* types, int64_t n,
                                   struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* code = args[0];
  int64_t* res;
  int64_t i;
  (void)state; (void)nargs;
  if (!plutino_format_is(types[0], "l"))
    return plutino_set_error(ctx, "fail_on(code) needs an int64, got format '%s'", types[0]->format),
           PLUTINO_INVALID;
  if (n > 0 && code->length > 0 && plutino_i64(code)[0] == 1)
    return plutino_set_error(ctx, "fail_on: asked to fail with a message");
  if (n > 0 && code->length > 0 && plutino_i64(code)[0] == 2) return PLUTINO_ERROR;
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) res[i] = plutino_i64(code)[plutino_arg_row(code, i)];
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- the library */

static const plutino_function double_plus_one = {
    sizeof(plutino_function), 0, "double_plus_one", 1, 1, dpo_validate, NULL, NULL, dpo_call, NULL};
static const plutino_function total = {
    sizeof(plutino_function), PLUTINO_FN_AGGREGATE, "total", 1, 1, NULL, NULL, NULL, NULL, total_aggregate};
static const plutino_function gil_held = {
    sizeof(plutino_function), PLUTINO_FN_VOLATILE, "gil_held", 0, 0, NULL, NULL, NULL, gil_call, NULL};
static const plutino_function wrong_length = {
    sizeof(plutino_function), 0, "wrong_length", 1, 1, NULL, NULL, NULL, wrong_length_call, NULL};
static const plutino_function say_hello = {
    sizeof(plutino_function), 0, "say_hello", 0, -1, NULL, NULL, NULL, say_hello_call, NULL};
static const plutino_function calls = {
    sizeof(plutino_function), 0, "calls", 1, 1, NULL, calls_create, calls_destroy, calls_call, NULL};

static const plutino_function fail_on = {
    sizeof(plutino_function), 0, "fail_on", 1, 1, NULL, NULL, NULL, fail_on_call, NULL};

static const plutino_function* const functions[] = {&double_plus_one, &total, &gil_held,
                                                     &wrong_length, &say_hello, &calls, &fail_on};

PLUTINO_DECLARE_FUNCTIONS("good_function", "1.2.3", functions)
