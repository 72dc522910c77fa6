/*
** echo.c -- the function library "echo": the smallest complete scalar functions.
**
**   echo(x)              returns x unchanged: int64, float64, string or bool; null stays null
**   countPlusOne(list)   the number of elements of a list, plus one (int64); null list -> null
**
** Both come from eKuiper's example function plugins. Use them from SQL:
**
**   SELECT echo(temperature) AS t, countPlusOne(tags) AS n FROM demo
**
** Each call gets a whole batch: the argument is an Arrow array of `length` rows (or of one row
** when the SQL passes a constant, as in echo(5)), and the result is a new array of `length`
** rows. validate() runs once when the rule is created, so a wrong argument type is a SQL
** error naming the type, not a failure on the first batch.
*/
#include "plutino/plutino_helpers.h"

/* A readable name for the Arrow formats users meet, for error messages. */
static const char* type_name(const char* fmt) {
  static const char* const names[][2] = {
      {"l", "int64"}, {"g", "float64"}, {"u", "string"}, {"U", "large string"}, {"b", "bool"},
      {"i", "int32"}, {"f", "float32"}, {"z", "binary"}, {"n", "null"}, {"+l", "list"},
      {"+L", "large list"}, {"+s", "struct"}, {"tsu:", "timestamp[us]"}};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(fmt, names[i][0]) == 0) return names[i][1];
  return "an Arrow type";
}

/* Mark the result rows whose argument row is null. */
static plutino_status copy_nulls(plutino_context* ctx, const struct ArrowArray* x, int64_t n,
                                 struct ArrowArray* out) {
  int64_t i;
  if (x->null_count == 0) return PLUTINO_OK;
  for (i = 0; i < n; i++)
    if (!plutino_is_valid(x, plutino_arg_row(x, i)) && plutino_result_set_null(ctx, out, i) != PLUTINO_OK) {
      out->release(out);
      return PLUTINO_NOMEM;
    }
  return PLUTINO_OK;
}

/* Describe the finished result `out` in *out_type; on failure release `out`, as plutino.h asks. */
static plutino_status result_type(plutino_context* ctx, struct ArrowArray* out, struct ArrowSchema* out_type,
                                  const char* fmt) {
  if (plutino_schema_make(out_type, fmt, "") == PLUTINO_OK) return PLUTINO_OK;
  out->release(out);
  return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
}

/* ---------------------------------------------------------------- echo(x) */

static int echo_supports(const char* fmt) {
  return strcmp(fmt, "l") == 0 || strcmp(fmt, "g") == 0 || strcmp(fmt, "u") == 0 || strcmp(fmt, "b") == 0;
}

static plutino_status echo_validate(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* types,
                                    struct ArrowSchema* out_type) {
  if (nargs != 1) return plutino_set_error(ctx, "echo takes 1 argument, got %d", (int)nargs), PLUTINO_INVALID;
  if (!echo_supports(types[0]->format))
    return plutino_set_error(ctx, "echo: argument type %s (Arrow '%s') is not supported; echo takes an int64, "
                             "float64, string or bool: cast the argument", type_name(types[0]->format),
                             types[0]->format), PLUTINO_INVALID;
  return plutino_schema_make(out_type, types[0]->format, "");
}

static plutino_status echo_call(plutino_context* ctx, void* state, int32_t nargs,
                                const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* x = args[0];
  const char* fmt = types[0]->format;
  int64_t i;
  (void)state;
  if (nargs != 1 || !echo_supports(fmt))
    return plutino_set_error(ctx, "echo: argument type %s (Arrow '%s') is not supported", type_name(fmt), fmt),
           PLUTINO_UNSUPPORTED;
  if (fmt[0] == 'l' || fmt[0] == 'g') {
    /* int64 and float64 are both 8-byte values: copy the bits. */
    const int64_t* in = plutino_i64(x);
    int64_t* res = plutino_result_i64(ctx, out, n);
    if (!res) return PLUTINO_NOMEM;
    for (i = 0; i < n; i++) res[i] = in[plutino_arg_row(x, i)];
  } else if (fmt[0] == 'b') {
    uint8_t* bits = plutino_result_bool(ctx, out, n);
    if (!bits) return PLUTINO_NOMEM;
    for (i = 0; i < n; i++) plutino_bit_set(bits, i, plutino_bool(x, plutino_arg_row(x, i)));
  } else {
    plutino_strings sb;
    int32_t len;
    size_t hint = 0; /* the bytes the result will hold, so the builder never regrows */
    if (n > 0) {
      const int32_t* offsets = (const int32_t*)x->buffers[1] + x->offset;
      hint = (size_t)(offsets[x->length] - offsets[0]) * (x->length == n ? 1 : (size_t)n);
    }
    if (plutino_strings_init(ctx, &sb, n, hint) != PLUTINO_OK) return PLUTINO_NOMEM;
    for (i = 0; i < n; i++) {
      int64_t r = plutino_arg_row(x, i);
      const char* s = plutino_str(x, r, &len);
      plutino_status st = plutino_is_valid(x, r) ? plutino_strings_append(&sb, s, (size_t)len)
                                                 : plutino_strings_append_null(&sb);
      if (st != PLUTINO_OK) {
        plutino_strings_abort(&sb);
        return PLUTINO_NOMEM;
      }
    }
    if (plutino_strings_finish(&sb, out) != PLUTINO_OK) return PLUTINO_NOMEM;
    return result_type(ctx, out, out_type, fmt);
  }
  if (copy_nulls(ctx, x, n, out) != PLUTINO_OK) return PLUTINO_NOMEM;
  return result_type(ctx, out, out_type, fmt);
}

/* ---------------------------------------------------------------- countPlusOne(list) */

static int is_list(const char* fmt) { return strcmp(fmt, "+l") == 0 || strcmp(fmt, "+L") == 0; }

static plutino_status count_validate(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* types,
                                     struct ArrowSchema* out_type) {
  if (nargs != 1)
    return plutino_set_error(ctx, "countPlusOne takes 1 argument, got %d", (int)nargs), PLUTINO_INVALID;
  if (!is_list(types[0]->format))
    return plutino_set_error(ctx, "countPlusOne: the argument must be a list (Arrow '+l'), got %s (Arrow '%s'); "
                             "pass an array column, e.g. countPlusOne(tags)", type_name(types[0]->format),
                             types[0]->format), PLUTINO_INVALID;
  return plutino_schema_make(out_type, "l", "");
}

static plutino_status count_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                 int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray* list = args[0];
  int64_t* res;
  int64_t i;
  (void)state;
  if (nargs != 1 || !is_list(types[0]->format))
    return plutino_set_error(ctx, "countPlusOne: the argument must be a list (Arrow '+l'), got %s (Arrow '%s')",
                             type_name(types[0]->format), types[0]->format), PLUTINO_UNSUPPORTED;
  if (!(res = plutino_result_i64(ctx, out, n))) return PLUTINO_NOMEM;
  if (types[0]->format[1] == 'l') {
    const int32_t* off = (const int32_t*)list->buffers[1] + list->offset;
    for (i = 0; i < n; i++) {
      int64_t r = plutino_arg_row(list, i);
      res[i] = (int64_t)(off[r + 1] - off[r]) + 1;
    }
  } else {
    const int64_t* off = (const int64_t*)list->buffers[1] + list->offset;
    for (i = 0; i < n; i++) {
      int64_t r = plutino_arg_row(list, i);
      res[i] = off[r + 1] - off[r] + 1;
    }
  }
  if (copy_nulls(ctx, list, n, out) != PLUTINO_OK) return PLUTINO_NOMEM;
  return result_type(ctx, out, out_type, "l");
}

/* ---------------------------------------------------------------- the library */

static const plutino_function echo_fn = {
    sizeof(plutino_function), 0, "echo", 1, 1, echo_validate, NULL, NULL, echo_call, NULL,
};

static const plutino_function count_plus_one_fn = {
    sizeof(plutino_function), 0, "countPlusOne", 1, 1, count_validate, NULL, NULL, count_call, NULL,
};

static const plutino_function* const echo_functions[] = {&echo_fn, &count_plus_one_fn};

PLUTINO_DECLARE_FUNCTIONS("echo", PLUTINO_PLUGIN_VERSION, echo_functions)
