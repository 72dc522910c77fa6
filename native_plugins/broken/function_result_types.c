/* Loader and engine fixture: functions whose results disagree with what their validate() said.
** The host must refuse each result as a contract violation naming the validated and the
** returned type, never read the bytes as the validated type.
**
**   f64_as_i64(x)        validate() gives float64, call() returns int64 and says so in out_type
**   f64_three_buffers(x) validate() gives float64, call() leaves out_type unset and returns an
**                        array with 3 buffers (a string's layout)
**   i64_with_child(x)    validate() gives int64, call() leaves out_type unset and returns an
**                        array with one child (a list's layout)
**   f64_no_values(x)     validate() gives float64, call() leaves out_type unset and returns
**                        rows with no values buffer
**   f64_sum_as_i64(x)    an aggregate: validate() gives float64, aggregate() returns int64
**                        and says so in out_type
**   f64_ok(x)            validate() gives float64, call() returns float64 without out_type
**                        (the well-formed case)
*/
#include "fixture.h"

PLUTINO_TEST_MARKER("function_result_types")

static plutino_status give_f64(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* arg_types,
                               struct ArrowSchema* out_type) {
  (void)ctx, (void)nargs, (void)arg_types;
  return plutino_schema_make(out_type, "g", "");
}

static plutino_status give_i64(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* arg_types,
                               struct ArrowSchema* out_type) {
  (void)ctx, (void)nargs, (void)arg_types;
  return plutino_schema_make(out_type, "l", "");
}

/* int64 rows 0.. n-1, declared as int64 in out_type */
static plutino_status i64_rows(plutino_context* ctx, struct ArrowArray* out, struct ArrowSchema* out_type,
                               int64_t n) {
  int64_t i;
  int64_t* res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) res[i] = i;
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

#define CALL_ARGS                                                                                       \
  plutino_context *ctx, void *state, int32_t nargs, const struct ArrowArray *const *args,              \
      const struct ArrowSchema *const *types, int64_t n, struct ArrowArray *out, struct ArrowSchema *out_type
#define UNUSED_CALL_ARGS (void)state, (void)nargs, (void)args, (void)types, (void)out_type

static plutino_status f64_as_i64_call(CALL_ARGS) {
  UNUSED_CALL_ARGS;
  return i64_rows(ctx, out, out_type, n);
}

static plutino_status f64_three_buffers_call(CALL_ARGS) {
  size_t sizes[3];
  UNUSED_CALL_ARGS;
  sizes[0] = 0;
  sizes[1] = (size_t)(n + 1) * sizeof(int32_t);
  sizes[2] = 1;
  if (plutino__array_init(ctx, out, n, 3, sizes) != PLUTINO_OK) return PLUTINO_NOMEM;
  memset((void*)out->buffers[1], 0, sizes[1]);
  return PLUTINO_OK;
}

static plutino_status i64_with_child_call(CALL_ARGS) {
  size_t sizes[2];
  UNUSED_CALL_ARGS;
  sizes[0] = 0;
  sizes[1] = (size_t)(n ? n : 1) * sizeof(int64_t);
  if (plutino__array_init(ctx, out, n, 2, sizes) != PLUTINO_OK) return PLUTINO_NOMEM;
  {
    plutino__array_data* d = (plutino__array_data*)out->private_data;
    d->children = (struct ArrowArray**)calloc(1, sizeof(struct ArrowArray*));
    if (!d->children || !(d->children[0] = (struct ArrowArray*)calloc(1, sizeof(struct ArrowArray)))) {
      out->release(out);
      return PLUTINO_NOMEM;
    }
    d->n_children = 1;
    sizes[1] = sizeof(int64_t);
    if (plutino__array_init(ctx, d->children[0], 0, 2, sizes) != PLUTINO_OK) {
      out->release(out);
      return PLUTINO_NOMEM;
    }
    memset((void*)out->buffers[1], 0, (size_t)(n ? n : 1) * sizeof(int64_t));
    out->n_children = 1;
    out->children = d->children;
  }
  return PLUTINO_OK;
}

static plutino_status f64_no_values_call(CALL_ARGS) {
  size_t sizes[2] = {0, 0};
  UNUSED_CALL_ARGS;
  return plutino__array_init(ctx, out, n, 2, sizes);  /* buffers[1] stays NULL */
}

static plutino_status f64_sum_as_i64_aggregate(plutino_context* ctx, void* state, int32_t nargs,
                                               const struct ArrowArray* const* args,
                                               const struct ArrowSchema* const* types, int64_t length,
                                               const int32_t* group_ids, int64_t ngroups, struct ArrowArray* out,
                                               struct ArrowSchema* out_type) {
  (void)state, (void)nargs, (void)args, (void)types, (void)length, (void)group_ids;
  return i64_rows(ctx, out, out_type, ngroups);
}

static plutino_status f64_ok_call(CALL_ARGS) {
  int64_t i;
  double* res;
  UNUSED_CALL_ARGS;
  if (!(res = plutino_result_f64(ctx, out, n))) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) res[i] = 1.0;
  return PLUTINO_OK;
}

#define SCALAR(NAME, VALIDATE) \
  static const plutino_function NAME = {sizeof(plutino_function), 0, #NAME, 1, 1, VALIDATE, NULL, NULL, NAME##_call, NULL}

SCALAR(f64_as_i64, give_f64);
SCALAR(f64_three_buffers, give_f64);
SCALAR(i64_with_child, give_i64);
SCALAR(f64_no_values, give_f64);
SCALAR(f64_ok, give_f64);
static const plutino_function f64_sum_as_i64 = {sizeof(plutino_function), PLUTINO_FN_AGGREGATE, "f64_sum_as_i64", 1,
                                                1, give_f64, NULL, NULL, NULL, f64_sum_as_i64_aggregate};

static const plutino_function* const functions[] = {&f64_as_i64, &f64_three_buffers, &i64_with_child,
                                                    &f64_no_values, &f64_sum_as_i64, &f64_ok};

PLUTINO_DECLARE_FUNCTIONS("function_result_types", "1.0.0", functions)
