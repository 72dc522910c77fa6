/*
** everything.c -- a function library that uses every helper of plutino_helpers.h.
**
** It exists for the contract's tests: it must compile without a warning as strict C11
** (-std=c11 -Wall -Wextra -Werror -pedantic) and as C++17, and each function checks one part
** of the helpers on real Arrow data:
**
**   scale(x, k)        float64 * float64; k may be a constant (an array of length 1); nulls stay
**   shout(s)           utf8 or large utf8 -> utf8, upper-cased with a '!' appended; nulls stay
**   flip(b)            bool -> bool, negated; nulls stay
**   positive(x)        int64 -> bool, x > 0 (nulls are false)
**   split(x)           int64 -> struct<half: int64, label: utf8>, a row batch built by the helpers
**   total(x)           aggregate: the int64 sum of each group; logs how many groups it saw
**   strict(x)          int64 -> int64, refuses negative values with a message
*/
#include "plutino/plutino.h"
#include "plutino/plutino_helpers.h"

#define UNUSED(x) (void)(x)

/* ------------------------------------------------------------------ scale */

static plutino_status scale_validate(plutino_context* ctx, int32_t nargs,
                                     const struct ArrowSchema* const* arg_types,
                                     struct ArrowSchema* out_type) {
  int32_t i;
  for (i = 0; i < nargs; i++)
    if (!plutino_format_is(arg_types[i], "g"))
      return plutino_set_error(ctx, "scale: argument %d must be float64 ('g'), got '%s'",
                               (int)i + 1, arg_types[i]->format), PLUTINO_INVALID;
  return plutino_schema_make(out_type, "g", "");
}

static plutino_status scale_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args,
                                 const struct ArrowSchema* const* types, int64_t n,
                                 struct ArrowArray* out, struct ArrowSchema* out_type) {
  const double* x = plutino_f64(args[0]);
  const double* k = plutino_f64(args[1]);
  double* res;
  int64_t i;
  UNUSED(state);
  UNUSED(nargs);
  UNUSED(types);
  UNUSED(out_type); /* validate() gave the type: out_type stays unset */
  res = plutino_result_f64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t rx = plutino_arg_row(args[0], i), rk = plutino_arg_row(args[1], i);
    if (plutino_is_valid(args[0], rx) && plutino_is_valid(args[1], rk)) {
      res[i] = x[rx] * k[rk];
    } else {
      res[i] = 0;
      if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) {
        out->release(out);
        return PLUTINO_NOMEM;
      }
    }
  }
  return PLUTINO_OK;
}

/* ------------------------------------------------------------------ shout */

static plutino_status shout_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args,
                                 const struct ArrowSchema* const* types, int64_t n,
                                 struct ArrowArray* out, struct ArrowSchema* out_type) {
  plutino_strings sb;
  int large = plutino_format_is(types[0], "U");
  int64_t i;
  UNUSED(state);
  UNUSED(nargs);
  if (!large && !plutino_format_is(types[0], "u"))
    return plutino_set_error(ctx, "shout: argument must be a string, got '%s'", types[0]->format),
           PLUTINO_INVALID;
  /* A deliberately small hint, so the builder has to grow its data buffer. */
  if (plutino_strings_init(ctx, &sb, n, 1) != PLUTINO_OK) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    const char* p;
    char buf[256];
    size_t len, j;
    if (!plutino_is_valid(args[0], i)) {
      if (plutino_strings_append_null(&sb) != PLUTINO_OK) goto fail;
      continue;
    }
    if (large) {
      int64_t l64;
      p = plutino_large_str(args[0], i, &l64);
      len = (size_t)l64;
    } else {
      int32_t l32;
      p = plutino_str(args[0], i, &l32);
      len = (size_t)l32;
    }
    if (len > sizeof buf - 1) len = sizeof buf - 1;
    for (j = 0; j < len; j++) buf[j] = (p[j] >= 'a' && p[j] <= 'z') ? (char)(p[j] - 32) : p[j];
    buf[len] = '!';
    if (plutino_strings_append(&sb, buf, len + 1) != PLUTINO_OK) goto fail;
  }
  if (plutino_strings_finish(&sb, out) != PLUTINO_OK) return PLUTINO_NOMEM;
  if (plutino_schema_make(out_type, "u", "") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
fail:
  plutino_strings_abort(&sb);
  return PLUTINO_NOMEM;
}

/* ------------------------------------------------------------------ flip, positive */

static plutino_status flip_call(plutino_context* ctx, void* state, int32_t nargs,
                                const struct ArrowArray* const* args,
                                const struct ArrowSchema* const* types, int64_t n,
                                struct ArrowArray* out, struct ArrowSchema* out_type) {
  uint8_t* bits;
  int64_t i;
  UNUSED(state);
  UNUSED(nargs);
  UNUSED(types);
  bits = plutino_result_bool(ctx, out, n);
  if (!bits) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    if (plutino_is_valid(args[0], i)) {
      plutino_bit_set(bits, i, !plutino_bool(args[0], i));
    } else if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) {
      out->release(out);
      return PLUTINO_NOMEM;
    }
  }
  if (plutino_schema_make(out_type, "b", "") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

static plutino_status positive_call(plutino_context* ctx, void* state, int32_t nargs,
                                    const struct ArrowArray* const* args,
                                    const struct ArrowSchema* const* types, int64_t n,
                                    struct ArrowArray* out, struct ArrowSchema* out_type) {
  const int64_t* x = plutino_i64(args[0]);
  uint8_t* bits;
  int64_t i;
  UNUSED(state);
  UNUSED(nargs);
  UNUSED(types);
  bits = plutino_result_bool(ctx, out, n);
  if (!bits) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    /* Set and then clear, so both directions of plutino_bit_set are exercised. */
    plutino_bit_set(bits, i, 1);
    if (!plutino_is_valid(args[0], i) || x[i] <= 0) plutino_bit_set(bits, i, 0);
  }
  if (plutino_schema_make(out_type, "b", "") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

/* ------------------------------------------------------------------ split: a row batch */

static plutino_status split_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args,
                                 const struct ArrowSchema* const* types, int64_t n,
                                 struct ArrowArray* out, struct ArrowSchema* out_type) {
  const int64_t* x = plutino_i64(args[0]);
  int64_t* half;
  plutino_strings labels;
  int64_t i;
  UNUSED(state);
  UNUSED(nargs);
  UNUSED(types);
  if (plutino_batch_struct(ctx, out, n, 2) != PLUTINO_OK) return PLUTINO_NOMEM;
  half = plutino_result_i64(ctx, out->children[0], n);
  if (!half) goto fail;
  if (plutino_strings_init(ctx, &labels, n, 4 * (size_t)n) != PLUTINO_OK) goto fail;
  for (i = 0; i < n; i++) {
    const char* label = (x[i] % 2 == 0) ? "even" : "odd";
    half[i] = x[i] / 2;
    if (plutino_strings_append(&labels, label, strlen(label)) != PLUTINO_OK) {
      plutino_strings_abort(&labels);
      goto fail;
    }
  }
  if (plutino_strings_finish(&labels, out->children[1]) != PLUTINO_OK) goto fail;
  if (plutino_schema_struct(out_type, "", 2) != PLUTINO_OK) goto fail;
  if (plutino_schema_make(out_type->children[0], "l", "half") != PLUTINO_OK ||
      plutino_schema_make(out_type->children[1], "u", "label") != PLUTINO_OK) {
    out_type->release(out_type);
    goto fail;
  }
  return PLUTINO_OK;
fail:
  out->release(out);
  return PLUTINO_NOMEM;
}

/* ------------------------------------------------------------------ total: an aggregate */

typedef struct total_state {
  int64_t windows; /* aggregate() calls on this state */
} total_state;

static plutino_status total_create(plutino_context* ctx, void** out_state) {
  total_state* s = (total_state*)calloc(1, sizeof *s);
  if (!s) return plutino_set_error(ctx, "total: out of memory"), PLUTINO_NOMEM;
  *out_state = s;
  return PLUTINO_OK;
}

static void total_destroy(plutino_context* ctx, void* state) {
  UNUSED(ctx);
  free(state);
}

static plutino_status total_aggregate(plutino_context* ctx, void* state, int32_t nargs,
                                      const struct ArrowArray* const* args,
                                      const struct ArrowSchema* const* types, int64_t length,
                                      const int32_t* group_ids, int64_t ngroups,
                                      struct ArrowArray* out, struct ArrowSchema* out_type) {
  total_state* s = (total_state*)state;
  const int64_t* x = plutino_i64(args[0]);
  int64_t* sums;
  int64_t i;
  UNUSED(nargs);
  UNUSED(types);
  sums = plutino_result_i64(ctx, out, ngroups);
  if (!sums) return PLUTINO_NOMEM;
  memset(sums, 0, (size_t)ngroups * sizeof *sums);
  for (i = 0; i < length; i++)
    if (plutino_is_valid(args[0], i)) sums[group_ids ? group_ids[i] : 0] += x[i];
  s->windows++;
  plutino_log(ctx, PLUTINO_LOG_INFO, "total: window %lld, %lld rows in %lld groups",
              (long long)s->windows, (long long)length, (long long)ngroups);
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

/* ------------------------------------------------------------------ strict: errors */

static plutino_status strict_call(plutino_context* ctx, void* state, int32_t nargs,
                                  const struct ArrowArray* const* args,
                                  const struct ArrowSchema* const* types, int64_t n,
                                  struct ArrowArray* out, struct ArrowSchema* out_type) {
  const int64_t* x = plutino_i64(args[0]);
  int64_t* res;
  int64_t i;
  UNUSED(state);
  UNUSED(nargs);
  UNUSED(types);
  for (i = 0; i < n; i++)
    if (plutino_is_valid(args[0], i) && x[i] < 0)
      return plutino_set_error(ctx, "strict: row %lld is %lld; values must be >= 0",
                               (long long)i, (long long)x[i]), PLUTINO_INVALID;
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) res[i] = x[i];
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

/* ------------------------------------------------------------------ the library */

static const plutino_function scale_fn = {
    sizeof(plutino_function), 0, "scale", 2, 2, scale_validate, NULL, NULL, scale_call, NULL};
static const plutino_function shout_fn = {
    sizeof(plutino_function), 0, "shout", 1, 1, NULL, NULL, NULL, shout_call, NULL};
static const plutino_function flip_fn = {
    sizeof(plutino_function), 0, "flip", 1, 1, NULL, NULL, NULL, flip_call, NULL};
static const plutino_function positive_fn = {
    sizeof(plutino_function), 0, "positive", 1, 1, NULL, NULL, NULL, positive_call, NULL};
static const plutino_function split_fn = {
    sizeof(plutino_function), 0, "split", 1, 1, NULL, NULL, NULL, split_call, NULL};
static const plutino_function total_fn = {
    sizeof(plutino_function), PLUTINO_FN_AGGREGATE, "total", 1, 1, NULL,
    total_create, total_destroy, NULL, total_aggregate};
static const plutino_function strict_fn = {
    sizeof(plutino_function), 0, "strict", 1, 1, NULL, NULL, NULL, strict_call, NULL};

static const plutino_function* const everything_functions[] = {
    &scale_fn, &shout_fn, &flip_fn, &positive_fn, &split_fn, &total_fn, &strict_fn};

PLUTINO_DECLARE_FUNCTIONS("everything", "1.0.0", everything_functions)
