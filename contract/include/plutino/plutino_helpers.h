/*
** plutino_helpers.h -- small inline helpers over plutino.h, so a simple plugin is a plain loop.
**
** Nothing here is part of the ABI: these are static inline functions compiled into the plugin.
** They cover what most plugins need and nothing more (docs/plugin-helpers.md lists them all;
** plutino_json.h reads a plugin's JSON config):
**
**   errors and logs     plutino_set_error(ctx, fmt, ...), plutino_log(ctx, level, fmt, ...)
**   reading arguments   plutino_is_valid(a, i), plutino_f64(a), plutino_i64(a), plutino_bool(a, i),
**                       plutino_arg_row(a, i), plutino_format_is(s, f)
**   reading strings     plutino_is_utf8(s), plutino_is_binary(s),
**                       plutino_str_at(s, a, i, &len)  (utf8 "u" or large utf8 "U", binary "z"/"Z"),
**                       plutino_str(a, i, &len)  ("u"/"z" only), plutino_large_str(a, i, &len)  ("U"/"Z")
**   writing results     plutino_result_f64 / _i64 / _bool (fixed width), plutino_result_set_null,
**                       plutino_strings_* (a utf8 "u" / binary "z" column builder)
**   timestamps          in plutino_time.h (which includes this header)
**   schemas             plutino_schema_make(out, format, name), plutino_schema_struct(out, name, n)
**   row batches         plutino_batch_struct(ctx, out, length, n) and its children
**
** Strings: the host hands a string column as utf8 ("u", int32 offsets) or, for data that came
** as Arrow large_string, large utf8 ("U", int64 offsets); a plugin that reads strings accepts
** both, which plutino_str_at() does. SQL `datetime` is timestamp[us] ("tsu:", or "tsu:<zone>"
** with a time zone): int64 microseconds since 1970-01-01T00:00:00Z.
**
** Every array or schema these helpers build owns its memory and carries a release callback
** that frees it (with the host's allocator when the context offers one), so it can be MOVED
** to the host as plutino.h requires.
**
** Example: a scalar function computing x * 2 + 1 over float64 (the contract's README builds a
** whole plugin, from this header to a loaded .so):
**
**     static plutino_status twice_call(plutino_context* ctx, void* state, int32_t nargs,
**                                      const struct ArrowArray* const* args,
**                                      const struct ArrowSchema* const* types, int64_t n,
**                                      struct ArrowArray* out, struct ArrowSchema* out_type) {
**       const struct ArrowArray* x = args[0];
**       const double* in = plutino_f64(x);
**       double* res = plutino_result_f64(ctx, out, n);
**       if (!res) return PLUTINO_NOMEM;
**       for (int64_t i = 0; i < n; i++) {
**         int64_t r = plutino_arg_row(x, i);
**         if (plutino_is_valid(x, r)) res[i] = in[r] * 2 + 1;
**         else if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
**       }
**       if (plutino_schema_make(out_type, "g", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
**       return PLUTINO_OK;  // a failed call must leave *out released: plutino.h, "MOVED"
**     }
*/
#ifndef PLUTINO_HELPERS_H
#define PLUTINO_HELPERS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plutino/plutino.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors and logging */

/* Write a printf-style message into the instance's error slot. Returns PLUTINO_ERROR so a
** plugin can write:  return plutino_set_error(ctx, "bad value %d", v), PLUTINO_INVALID;  or
** simply  return plutino_set_error(ctx, ...);  */
static inline plutino_status plutino_set_error(plutino_context* ctx, const char* fmt, ...) {
  if (ctx && ctx->error && ctx->error_capacity > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, ctx->error_capacity, fmt, ap);
    va_end(ap);
  }
  return PLUTINO_ERROR;
}

/* Log a printf-style message through the host (messages longer than 1 KiB are cut). */
static inline void plutino_log(plutino_context* ctx, int32_t level, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  if (!ctx || !ctx->host || !ctx->host->log) return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ctx->host->log(ctx, level, buf);
}

/* ---------------------------------------------------------------- memory */

typedef void* (*plutino_alloc_fn)(size_t);
typedef void (*plutino_free_fn)(void*);

static inline void* plutino__malloc(size_t n) { return malloc(n); }
static inline void plutino__free(void* p) { free(p); }

/* The allocator pair for data moved to the host: the host's when offered, else the C library's. */
static inline plutino_alloc_fn plutino__alloc_of(plutino_context* ctx) {
  return (ctx && ctx->host && ctx->host->alloc && ctx->host->free) ? ctx->host->alloc : plutino__malloc;
}
static inline plutino_free_fn plutino__free_of(plutino_context* ctx) {
  return (ctx && ctx->host && ctx->host->alloc && ctx->host->free) ? ctx->host->free : plutino__free;
}

/* ---------------------------------------------------------------- reading arrays */

/* Does `format` (an Arrow format string) equal `fmt`? */
static inline int plutino_format_is(const struct ArrowSchema* s, const char* fmt) {
  return s && s->format && strcmp(s->format, fmt) == 0;
}

/* The row of argument `a` to read for result row i: i, or 0 when `a` is a constant (length 1). */
static inline int64_t plutino_arg_row(const struct ArrowArray* a, int64_t i) {
  return a->length == 1 ? 0 : i;
}

/* Is row i (0-based, before the array's offset) non-null? */
static inline int plutino_is_valid(const struct ArrowArray* a, int64_t i) {
  const uint8_t* bits;
  int64_t j;
  if (a->null_count == 0 || a->n_buffers == 0 || !a->buffers[0]) return 1;
  bits = (const uint8_t*)a->buffers[0];
  j = i + a->offset;
  return (bits[j >> 3] >> (j & 7)) & 1;
}

/* The values of a float64 ("g") / int64 ("l") array, already shifted by its offset. */
static inline const double* plutino_f64(const struct ArrowArray* a) {
  return (const double*)a->buffers[1] + a->offset;
}
static inline const int64_t* plutino_i64(const struct ArrowArray* a) {
  return (const int64_t*)a->buffers[1] + a->offset;
}

/* Row i of a boolean ("b") array, 0 or 1. */
static inline int plutino_bool(const struct ArrowArray* a, int64_t i) {
  const uint8_t* bits = (const uint8_t*)a->buffers[1];
  int64_t j = i + a->offset;
  return (bits[j >> 3] >> (j & 7)) & 1;
}

/* Is `s` a string column: utf8 "u" (int32 offsets) or large utf8 "U" (int64 offsets)? A plugin
** reading strings must take both: the host passes "U" for data that came as large_string. */
static inline int plutino_is_utf8(const struct ArrowSchema* s) {
  return plutino_format_is(s, "u") || plutino_format_is(s, "U");
}

/* Is `s` a bytes column: binary "z" (int32 offsets) or large binary "Z" (int64 offsets)? */
static inline int plutino_is_binary(const struct ArrowSchema* s) {
  return plutino_format_is(s, "z") || plutino_format_is(s, "Z");
}

/* Row i of a utf8 ("u") or binary ("z") array: a pointer to its bytes (not NUL-terminated)
** and its length in *len. Only for 32-bit offsets: use plutino_str_at() when the column may be
** "U" or "Z". */
static inline const char* plutino_str(const struct ArrowArray* a, int64_t i, int32_t* len) {
  const int32_t* offsets = (const int32_t*)a->buffers[1] + a->offset;
  *len = offsets[i + 1] - offsets[i];
  return (const char*)a->buffers[2] + offsets[i];
}

/* The same for large utf8 ("U") or large binary ("Z") arrays, with 64-bit offsets. */
static inline const char* plutino_large_str(const struct ArrowArray* a, int64_t i, int64_t* len) {
  const int64_t* offsets = (const int64_t*)a->buffers[1] + a->offset;
  *len = offsets[i + 1] - offsets[i];
  return (const char*)a->buffers[2] + offsets[i];
}

/* Row i of a string or bytes array of type `s`, whichever its offsets ("u", "U", "z" or "Z"):
** a pointer to its bytes (not NUL-terminated) and their number in *len. NULL (and *len 0)
** when `s` is none of these types; a null row reads as whatever its slot holds (usually ""),
** so test plutino_is_valid(a, i) first. */
static inline const char* plutino_str_at(const struct ArrowSchema* s, const struct ArrowArray* a, int64_t i,
                                         int64_t* len) {
  int32_t n32;
  const char* p;
  if (plutino_format_is(s, "U") || plutino_format_is(s, "Z")) return plutino_large_str(a, i, len);
  if (!plutino_format_is(s, "u") && !plutino_format_is(s, "z")) {
    *len = 0;
    return NULL;
  }
  p = plutino_str(a, i, &n32);
  *len = n32;
  return p;
}

/* ---------------------------------------------------------------- building arrays */

/* Private data of every array built here: its buffers, which of them it owns, its children. */
typedef struct plutino__array_data {
  plutino_free_fn free_fn;
  const void* buffers[3];
  void* owned[3];
  struct ArrowArray** children;
  int64_t n_children;
} plutino__array_data;

static inline void plutino__array_release(struct ArrowArray* a) {
  plutino__array_data* d = (plutino__array_data*)a->private_data;
  int64_t i;
  if (!a->release) return;
  if (d) {
    for (i = 0; i < 3; i++)
      if (d->owned[i]) d->free_fn(d->owned[i]);
    for (i = 0; i < d->n_children; i++) {
      if (d->children[i]->release) d->children[i]->release(d->children[i]);
      d->free_fn(d->children[i]);
    }
    if (d->children) d->free_fn(d->children);
    d->free_fn(d);
  }
  a->release = NULL;
}

/* Start an array of `length` rows with `n_buffers` buffers; buffer b gets `sizes[b]` bytes
** (0: none). Returns PLUTINO_OK or PLUTINO_NOMEM (with the error set). */
static inline plutino_status plutino__array_init(plutino_context* ctx, struct ArrowArray* out,
                                                 int64_t length, int64_t n_buffers,
                                                 const size_t* sizes) {
  plutino_alloc_fn alloc = plutino__alloc_of(ctx);
  plutino__array_data* d = (plutino__array_data*)alloc(sizeof *d);
  int64_t b;
  memset(out, 0, sizeof *out);
  if (!d) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  memset(d, 0, sizeof *d);
  d->free_fn = plutino__free_of(ctx);
  for (b = 0; b < n_buffers; b++) {
    if (sizes[b] == 0) continue;
    d->owned[b] = alloc(sizes[b]);
    if (!d->owned[b]) {
      out->private_data = d;
      out->release = plutino__array_release;
      plutino__array_release(out);
      return plutino_set_error(ctx, "out of memory allocating %zu bytes", sizes[b]), PLUTINO_NOMEM;
    }
    d->buffers[b] = d->owned[b];
  }
  out->length = length;
  out->n_buffers = n_buffers;
  out->buffers = d->buffers;
  out->private_data = d;
  out->release = plutino__array_release;
  return PLUTINO_OK;
}

static inline void* plutino__result_fixed(plutino_context* ctx, struct ArrowArray* out,
                                          int64_t length, size_t value_bytes) {
  size_t sizes[2];
  sizes[0] = 0;
  sizes[1] = value_bytes ? value_bytes : 1;
  if (plutino__array_init(ctx, out, length, 2, sizes) != PLUTINO_OK) return NULL;
  return (void*)out->buffers[1];
}

/* Allocate a float64 / int64 result of `length` rows into *out and return its values to fill
** (NULL when out of memory; the error is then set and *out is untouched). No nulls until
** plutino_result_set_null() says so. Declare the type with plutino_schema_make(out_type, "g"/"l"). */
static inline double* plutino_result_f64(plutino_context* ctx, struct ArrowArray* out, int64_t length) {
  return (double*)plutino__result_fixed(ctx, out, length, (size_t)length * sizeof(double));
}
static inline int64_t* plutino_result_i64(plutino_context* ctx, struct ArrowArray* out, int64_t length) {
  return (int64_t*)plutino__result_fixed(ctx, out, length, (size_t)length * sizeof(int64_t));
}

/* Allocate a boolean ("b") result, all false; set row i with plutino_bit_set(bits, i, v). */
static inline uint8_t* plutino_result_bool(plutino_context* ctx, struct ArrowArray* out, int64_t length) {
  uint8_t* bits = (uint8_t*)plutino__result_fixed(ctx, out, length, (size_t)(length + 7) / 8);
  if (bits) memset(bits, 0, (size_t)(length + 7) / 8 ? (size_t)(length + 7) / 8 : 1);
  return bits;
}

static inline void plutino_bit_set(uint8_t* bits, int64_t i, int v) {
  if (v) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
  else bits[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

/* Mark row i of a result built by these helpers as null (allocates the validity bitmap on
** first use). Returns PLUTINO_NOMEM if that allocation fails. */
static inline plutino_status plutino_result_set_null(plutino_context* ctx, struct ArrowArray* out, int64_t i) {
  plutino__array_data* d = (plutino__array_data*)out->private_data;
  if (!d->owned[0]) {
    size_t n = (size_t)(out->length + 7) / 8;
    d->owned[0] = plutino__alloc_of(ctx)(n ? n : 1);
    if (!d->owned[0]) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
    memset(d->owned[0], 0xff, n ? n : 1);
    d->buffers[0] = d->owned[0];
  }
  plutino_bit_set((uint8_t*)d->owned[0], i, 0);
  out->null_count++;
  return PLUTINO_OK;
}

/* ------------------------------------------------ string results */

/* A builder for a utf8 ("u") or binary ("z") result column (32-bit offsets: up to 2 GiB of
** data per column; declare the result type "u" or "z" with plutino_schema_make):
**     plutino_strings sb;
**     if (plutino_strings_init(ctx, &sb, n, 16 * n) != PLUTINO_OK) return PLUTINO_NOMEM;
**     for (...) if (plutino_strings_append(&sb, p, len) != PLUTINO_OK) { plutino_strings_abort(&sb); return PLUTINO_NOMEM; }
**     return plutino_strings_finish(&sb, out);                                                  */
typedef struct plutino_strings {
  plutino_context* ctx;
  int64_t capacity_rows, rows, null_count;
  int32_t* offsets;
  uint8_t* validity;  /* allocated on the first null */
  char* data;
  size_t data_len, data_cap;
} plutino_strings;

static inline plutino_status plutino_strings_init(plutino_context* ctx, plutino_strings* sb,
                                                  int64_t rows, size_t bytes_hint) {
  plutino_alloc_fn alloc = plutino__alloc_of(ctx);
  memset(sb, 0, sizeof *sb);
  sb->ctx = ctx;
  sb->capacity_rows = rows;
  sb->data_cap = bytes_hint ? bytes_hint : 64;
  sb->offsets = (int32_t*)alloc((size_t)(rows + 1) * sizeof(int32_t));
  sb->data = (char*)alloc(sb->data_cap);
  if (!sb->offsets || !sb->data) {
    if (sb->offsets) plutino__free_of(ctx)(sb->offsets);
    if (sb->data) plutino__free_of(ctx)(sb->data);
    return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  }
  sb->offsets[0] = 0;
  return PLUTINO_OK;
}

/* Append one value of `len` bytes. Grows the data buffer as needed. */
static inline plutino_status plutino_strings_append(plutino_strings* sb, const char* p, size_t len) {
  if (sb->rows >= sb->capacity_rows)
    return plutino_set_error(sb->ctx, "string builder overflow: more than %lld rows",
                             (long long)sb->capacity_rows);
  if (sb->data_len + len > sb->data_cap) {
    size_t cap = sb->data_cap * 2;
    char* data;
    while (cap < sb->data_len + len) cap *= 2;
    if (cap > (size_t)INT32_MAX) return plutino_set_error(sb->ctx, "string column exceeds 2 GiB");
    data = (char*)plutino__alloc_of(sb->ctx)(cap);
    if (!data) return plutino_set_error(sb->ctx, "out of memory"), PLUTINO_NOMEM;
    memcpy(data, sb->data, sb->data_len);
    plutino__free_of(sb->ctx)(sb->data);
    sb->data = data;
    sb->data_cap = cap;
  }
  if (len) memcpy(sb->data + sb->data_len, p, len);
  sb->data_len += len;
  sb->rows++;
  sb->offsets[sb->rows] = (int32_t)sb->data_len;
  return PLUTINO_OK;
}

/* Append a null row. */
static inline plutino_status plutino_strings_append_null(plutino_strings* sb) {
  if (!sb->validity) {
    size_t n = (size_t)(sb->capacity_rows + 7) / 8;
    sb->validity = (uint8_t*)plutino__alloc_of(sb->ctx)(n ? n : 1);
    if (!sb->validity) return plutino_set_error(sb->ctx, "out of memory"), PLUTINO_NOMEM;
    memset(sb->validity, 0xff, n ? n : 1);
  }
  if (plutino_strings_append(sb, "", 0) != PLUTINO_OK) return PLUTINO_ERROR;
  plutino_bit_set(sb->validity, sb->rows - 1, 0);
  sb->null_count++;
  return PLUTINO_OK;
}

/* Free a builder that will not be finished. */
static inline void plutino_strings_abort(plutino_strings* sb) {
  plutino_free_fn f = plutino__free_of(sb->ctx);
  if (sb->offsets) f(sb->offsets);
  if (sb->data) f(sb->data);
  if (sb->validity) f(sb->validity);
  memset(sb, 0, sizeof *sb);
}

/* Move the built column into *out (its rows are those appended). */
static inline plutino_status plutino_strings_finish(plutino_strings* sb, struct ArrowArray* out) {
  size_t none[3] = {0, 0, 0};
  plutino__array_data* d;
  if (plutino__array_init(sb->ctx, out, sb->rows, 3, none) != PLUTINO_OK) {
    plutino_strings_abort(sb);
    return PLUTINO_NOMEM;
  }
  d = (plutino__array_data*)out->private_data;
  d->owned[0] = sb->validity;
  d->owned[1] = sb->offsets;
  d->owned[2] = sb->data;
  d->buffers[0] = sb->validity;
  d->buffers[1] = sb->offsets;
  d->buffers[2] = sb->data;
  out->null_count = sb->null_count;
  memset(sb, 0, sizeof *sb);
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- schemas */

typedef struct plutino__schema_data {
  char* format;
  char* name;
} plutino__schema_data;

static inline void plutino__schema_release(struct ArrowSchema* s) {
  int64_t i;
  if (!s->release) return;
  for (i = 0; i < s->n_children; i++) {
    if (s->children[i]->release) s->children[i]->release(s->children[i]);
    free(s->children[i]);
  }
  free(s->children);
  free(s->private_data);
  s->release = NULL;
}

/* Build a schema of `format` (e.g. "g") named `name` ("" for a function result) into *out.
** The strings are copied. Returns PLUTINO_OK or PLUTINO_NOMEM. */
static inline plutino_status plutino_schema_make(struct ArrowSchema* out, const char* format,
                                                 const char* name) {
  size_t fl = strlen(format) + 1, nl = strlen(name) + 1;
  plutino__schema_data* d = (plutino__schema_data*)malloc(sizeof *d + fl + nl);
  memset(out, 0, sizeof *out);
  if (!d) return PLUTINO_NOMEM;
  d->format = (char*)(d + 1);
  d->name = d->format + fl;
  memcpy(d->format, format, fl);
  memcpy(d->name, name, nl);
  out->format = d->format;
  out->name = d->name;
  out->flags = ARROW_FLAG_NULLABLE;
  out->private_data = d;
  out->release = plutino__schema_release;
  return PLUTINO_OK;
}

/* Build a struct schema ("+s") named `name` ("" for a source's batch or a function result)
** with `n` children into *out; fill each child afterwards with
** plutino_schema_make(out->children[i], format, column_name). Returns PLUTINO_OK or
** PLUTINO_NOMEM. */
static inline plutino_status plutino_schema_struct(struct ArrowSchema* out, const char* name, int64_t n) {
  int64_t i;
  if (plutino_schema_make(out, "+s", name) != PLUTINO_OK) return PLUTINO_NOMEM;
  out->flags = 0;
  out->children = (struct ArrowSchema**)calloc((size_t)(n ? n : 1), sizeof(struct ArrowSchema*));
  if (!out->children) { out->release(out); return PLUTINO_NOMEM; }
  for (i = 0; i < n; i++) {
    out->children[i] = (struct ArrowSchema*)calloc(1, sizeof(struct ArrowSchema));
    if (!out->children[i]) { out->n_children = i; out->release(out); return PLUTINO_NOMEM; }
  }
  out->n_children = n;
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- row batches */

/* Start a batch of `length` rows with `n` columns (a struct array) in *out. Then build each
** column into out->children[i] with the result helpers (plutino_result_f64(ctx,
** out->children[i], length), plutino_strings_finish(&sb, out->children[i]), ...); every child
** must be built before the batch is moved to the host. */
static inline plutino_status plutino_batch_struct(plutino_context* ctx, struct ArrowArray* out,
                                                  int64_t length, int64_t n) {
  size_t none[1] = {0};
  plutino__array_data* d;
  int64_t i;
  if (plutino__array_init(ctx, out, length, 1, none) != PLUTINO_OK) return PLUTINO_NOMEM;
  d = (plutino__array_data*)out->private_data;
  d->children = (struct ArrowArray**)plutino__alloc_of(ctx)((size_t)(n ? n : 1) * sizeof(struct ArrowArray*));
  if (!d->children) { out->release(out); return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM; }
  for (i = 0; i < n; i++) {
    d->children[i] = (struct ArrowArray*)plutino__alloc_of(ctx)(sizeof(struct ArrowArray));
    if (!d->children[i]) {
      d->n_children = i;
      out->release(out);
      return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
    }
    memset(d->children[i], 0, sizeof(struct ArrowArray));
  }
  d->n_children = n;
  out->n_children = n;
  out->children = d->children;
  return PLUTINO_OK;
}

#ifdef __cplusplus
}
#endif

#endif /* PLUTINO_HELPERS_H */
