/*
** fastmath.c -- the function library "fastmath": scalar functions written for speed.
**
**   mul2add1(x)      x * 2 + 1 as float64 (int64 x is converted to float64 first); null -> null
**   upperAscii(s)    s with the ASCII letters a-z upper-cased (other bytes unchanged); null -> null
**
** The benchmarks (bench/) call these to show that a native function over a batch runs at the
** speed of the same C loop called directly. Use them from SQL like any function:
**
**   SELECT mul2add1(temperature) AS t, upperAscii(name) AS n FROM demo
**
** What makes them fast, and how to do the same in your own functions:
**   - the inner loops have no branches and no calls per row, over `restrict` pointers, so the
**     compiler vectorizes them; values under a null slot are computed too (it costs nothing)
**     and are simply not looked at;
**   - nulls are handled by copying the argument's validity bitmap (one memcpy, or a shift when
**     the argument is a slice), not by testing each row;
**   - each result is one allocation: header, bitmap and values together, freed by one call in
**     its release callback;
**   - call() does not describe the result type on every batch: validate() gave it once.
*/
#include "plutino/plutino_helpers.h"

/* ---------------------------------------------------------------- one-block results */

typedef struct fm_block {
  void (*free_fn)(void*);
  const void* buffers[3];
} fm_block;

#define FM_ALIGN(n) (((size_t)(n) + 63) & ~(size_t)63)

static void fm_release(struct ArrowArray* a) {
  fm_block* b = (fm_block*)a->private_data;
  a->release = NULL;
  b->free_fn(b);
}

/* Allocate a result of `n` rows with n_buffers buffers of sizes[] bytes in one block (with the
** host's allocator when it offers one: 64-byte aligned, so every buffer is too). sizes[0] == 0
** means no validity bitmap. Returns PLUTINO_OK or PLUTINO_NOMEM (error set, *out untouched). */
static plutino_status fm_result(plutino_context* ctx, struct ArrowArray* out, int64_t n, int n_buffers,
                                const size_t* sizes) {
  int host = ctx && ctx->host && ctx->host->alloc && ctx->host->free;
  size_t at[3], total = FM_ALIGN(sizeof(fm_block));
  char* mem;
  fm_block* b;
  int i;
  for (i = 0; i < n_buffers; i++) {
    at[i] = total;
    total += i == 0 && sizes[0] == 0 ? 0 : FM_ALIGN(sizes[i] ? sizes[i] : 1);
  }
  mem = (char*)(host ? ctx->host->alloc(total) : malloc(total));
  if (!mem) return plutino_set_error(ctx, "out of memory allocating %zu bytes", total), PLUTINO_NOMEM;
  b = (fm_block*)mem;
  b->free_fn = host ? ctx->host->free : free;
  for (i = 0; i < n_buffers; i++) b->buffers[i] = i == 0 && sizes[0] == 0 ? NULL : mem + at[i];
  memset(out, 0, sizeof *out);
  out->length = n;
  out->n_buffers = n_buffers;
  out->buffers = b->buffers;
  out->private_data = b;
  out->release = fm_release;
  return PLUTINO_OK;
}

static size_t bitmap_bytes(int64_t n) { return (size_t)(n + 7) / 8; }

/* Copy n validity bits starting at bit `offset` of src to the start of dst. */
static void copy_bits(uint8_t* restrict dst, const uint8_t* restrict src, int64_t offset, int64_t n) {
  int64_t nbytes = (int64_t)bitmap_bytes(n), k;
  int s = (int)(offset & 7);
  src += offset >> 3;
  if (s == 0) {
    memcpy(dst, src, (size_t)nbytes);
    return;
  }
  for (k = 0; k + 1 < nbytes; k++) dst[k] = (uint8_t)((src[k] >> s) | (src[k + 1] << (8 - s)));
  if (nbytes > 0) /* the last byte: its high bits come from a next source byte only if one exists */
    dst[k] = (uint8_t)((src[k] >> s) | ((k + 1) * 8 < s + n ? src[k + 1] << (8 - s) : 0));
}

/* The result's validity: the argument's bitmap, or all null for a null constant. */
static void fm_validity(struct ArrowArray* out, const struct ArrowArray* x, int64_t n, int constant) {
  uint8_t* bits = (uint8_t*)out->buffers[0];
  if (!bits) return;
  if (constant) { /* only allocated when the constant is null */
    memset(bits, 0, bitmap_bytes(n));
    out->null_count = n;
  } else {
    copy_bits(bits, (const uint8_t*)x->buffers[0], x->offset, n);
    out->null_count = x->null_count;
  }
}

/* Does the result need a bitmap? Whenever the argument has nulls, unless it is a valid constant. */
static int fm_needs_bitmap(const struct ArrowArray* x, int constant) {
  if (x->null_count == 0 || !x->buffers[0]) return 0;
  return constant ? !plutino_is_valid(x, 0) : 1;
}

/* ---------------------------------------------------------------- mul2add1(x) */

static void mul2add1_f64(const double* restrict in, double* restrict out, int64_t n) {
  int64_t i;
  for (i = 0; i < n; i++) out[i] = in[i] * 2.0 + 1.0;
}

static void mul2add1_i64(const int64_t* restrict in, double* restrict out, int64_t n) {
  int64_t i;
  for (i = 0; i < n; i++) out[i] = (double)in[i] * 2.0 + 1.0;
}

static plutino_status mul2add1_validate(plutino_context* ctx, int32_t nargs,
                                        const struct ArrowSchema* const* types, struct ArrowSchema* out_type) {
  if (nargs != 1) return plutino_set_error(ctx, "mul2add1 takes 1 argument, got %d", (int)nargs), PLUTINO_INVALID;
  if (!plutino_format_is(types[0], "g") && !plutino_format_is(types[0], "l"))
    return plutino_set_error(ctx, "mul2add1: the argument must be a float64 or int64, got Arrow type '%s'; "
                             "cast it, e.g. mul2add1(CAST(x AS FLOAT))", types[0]->format), PLUTINO_INVALID;
  return plutino_schema_make(out_type, "g", "");
}

static plutino_status mul2add1_call(plutino_context* ctx, void* state, int32_t nargs,
                                    const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                    int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* x = args[0];
  int is_int = plutino_format_is(types[0], "l"), constant = x->length == 1 && n != 1;
  size_t sizes[2];
  double* res;
  (void)state, (void)nargs, (void)out_type; /* the type is the validated float64 */
  if (!is_int && !plutino_format_is(types[0], "g"))
    return plutino_set_error(ctx, "mul2add1: Arrow type '%s' is not supported", types[0]->format),
           PLUTINO_UNSUPPORTED;
  sizes[0] = fm_needs_bitmap(x, constant) ? bitmap_bytes(n) : 0;
  sizes[1] = (size_t)n * sizeof(double);
  if (fm_result(ctx, out, n, 2, sizes) != PLUTINO_OK) return PLUTINO_NOMEM;
  res = (double*)out->buffers[1];
  if (constant) {
    double v = is_int ? (double)plutino_i64(x)[0] * 2.0 + 1.0 : plutino_f64(x)[0] * 2.0 + 1.0;
    int64_t i;
    for (i = 0; i < n; i++) res[i] = v;
  } else if (is_int) {
    mul2add1_i64(plutino_i64(x), res, n);
  } else {
    mul2add1_f64(plutino_f64(x), res, n);
  }
  fm_validity(out, x, n, constant);
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- upperAscii(s) */

static void upper_ascii(const uint8_t* restrict in, uint8_t* restrict out, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) out[i] = (uint8_t)(in[i] - (((uint8_t)(in[i] - 'a') < 26) << 5));
}

static void rebase_offsets(const int32_t* restrict in, int32_t* restrict out, int64_t n) {
  int64_t i;
  int32_t base = in[0];
  for (i = 0; i <= n; i++) out[i] = in[i] - base;
}

static plutino_status upper_validate(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* types,
                                     struct ArrowSchema* out_type) {
  if (nargs != 1) return plutino_set_error(ctx, "upperAscii takes 1 argument, got %d", (int)nargs), PLUTINO_INVALID;
  if (!plutino_format_is(types[0], "u"))
    return plutino_set_error(ctx, "upperAscii: the argument must be a string (Arrow 'u'), got Arrow type '%s'; "
                             "cast it, e.g. upperAscii(CAST(x AS STRING))", types[0]->format), PLUTINO_INVALID;
  return plutino_schema_make(out_type, "u", "");
}

static plutino_status upper_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                 int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* x = args[0];
  const int32_t* offsets = (const int32_t*)x->buffers[1] + x->offset;
  int constant = x->length == 1 && n != 1;
  int32_t len = 0;
  const char* s = NULL;
  size_t sizes[3], bytes;
  (void)state, (void)nargs, (void)out_type; /* the type is the validated utf8 */
  if (!plutino_format_is(types[0], "u"))
    return plutino_set_error(ctx, "upperAscii: Arrow type '%s' is not supported", types[0]->format),
           PLUTINO_UNSUPPORTED;
  if (constant) {
    if (plutino_is_valid(x, 0)) s = plutino_str(x, 0, &len);
    if ((int64_t)len * n > INT32_MAX)
      return plutino_set_error(ctx, "upperAscii: the result would exceed 2 GiB (%lld rows of %d bytes)",
                               (long long)n, (int)len), PLUTINO_INVALID;
    bytes = (size_t)len * (size_t)n;
  } else {
    bytes = n > 0 ? (size_t)(offsets[n] - offsets[0]) : 0;
  }
  sizes[0] = fm_needs_bitmap(x, constant) ? bitmap_bytes(n) : 0;
  sizes[1] = (size_t)(n + 1) * sizeof(int32_t);
  sizes[2] = bytes;
  if (fm_result(ctx, out, n, 3, sizes) != PLUTINO_OK) return PLUTINO_NOMEM;
  if (constant) {
    int32_t* o = (int32_t*)out->buffers[1];
    uint8_t* data = (uint8_t*)out->buffers[2];
    int64_t i;
    for (i = 0; i <= n; i++) o[i] = (int32_t)(i * len);
    if (len > 0) {
      upper_ascii((const uint8_t*)s, data, (size_t)len);
      for (i = 1; i < n; i++) memcpy(data + i * len, data, (size_t)len);
    }
  } else if (n > 0) {
    rebase_offsets(offsets, (int32_t*)out->buffers[1], n);
    upper_ascii((const uint8_t*)x->buffers[2] + offsets[0], (uint8_t*)out->buffers[2], bytes);
  } else {
    ((int32_t*)out->buffers[1])[0] = 0;
  }
  fm_validity(out, x, n, constant);
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- the library */

static const plutino_function mul2add1_fn = {
    sizeof(plutino_function), 0, "mul2add1", 1, 1, mul2add1_validate, NULL, NULL, mul2add1_call, NULL,
};

static const plutino_function upper_ascii_fn = {
    sizeof(plutino_function), 0, "upperAscii", 1, 1, upper_validate, NULL, NULL, upper_call, NULL,
};

static const plutino_function* const fastmath_functions[] = {&mul2add1_fn, &upper_ascii_fn};

PLUTINO_DECLARE_FUNCTIONS("fastmath", PLUTINO_PLUGIN_VERSION, fastmath_functions)
