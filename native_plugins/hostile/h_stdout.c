/* Hostile fixture: h_stdout(x) -> x, an identity over int64 or float64 that writes 1 MiB to
** the process's stdout on every call (fd 1, with write(2), so no stdio buffering): lines of
** 99 'x' bytes and a newline. Then it returns x normally. With nobody reading a piped stdout,
** the call blocks once the pipe is full. */
#include <errno.h>
#include <unistd.h>

#include "plutino/plutino_helpers.h"

#define NAME "h_stdout"

/* ---------------------------------------------------------------- identity (int64 or float64) */

static int id_type_ok(const struct ArrowSchema* type) {
  return plutino_format_is(type, "l") || plutino_format_is(type, "g");
}

static plutino_status id_validate(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* types,
                                  struct ArrowSchema* out) {
  (void)nargs;
  if (!id_type_ok(types[0]))
    return plutino_set_error(ctx, NAME "(x) needs an int64 or float64 argument, got format '%s'",
                             types[0]->format),
           PLUTINO_INVALID;
  return plutino_schema_make(out, types[0]->format, "");
}

/* Copy x into *out: its 8-byte values bit for bit, its nulls as nulls, a constant repeated. */
static plutino_status id_copy(plutino_context* ctx, const struct ArrowArray* x, const struct ArrowSchema* type,
                              int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  const char* in;
  int64_t* res;
  int64_t i;
  if (!id_type_ok(type))
    return plutino_set_error(ctx, NAME "(x) needs an int64 or float64 argument, got format '%s'", type->format),
           PLUTINO_INVALID;
  in = (const char*)x->buffers[1] + x->offset * 8;
  res = plutino_result_i64(ctx, out, n);
  if (!res) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(x, i);
    res[i] = 0;
    if (plutino_is_valid(x, r)) memcpy(&res[i], in + r * 8, 8);
    else if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  }
  if (plutino_schema_make(out_type, type->format, "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- the hostile part */

#define FLOOD_BYTES ((size_t)1 << 20) /* 1 MiB */
#define LINE 100                         /* a newline ends every 100-byte line */

/* Write 1 MiB to fd 1 with write(2), bypassing stdio: lines of 99 'x' and a newline (the last,
** shorter line ends in a newline too). Short writes are resumed; a failed write gives up. */
static void flood_stdout(void) {
  char* buf = (char*)malloc(FLOOD_BYTES);
  size_t i, done = 0;
  if (!buf) return;
  for (i = 0; i < FLOOD_BYTES; i++) buf[i] = (i % LINE == LINE - 1) ? '\n' : 'x';
  buf[FLOOD_BYTES - 1] = '\n';
  while (done < FLOOD_BYTES) {
    ssize_t w = write(1, buf + done, FLOOD_BYTES - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (size_t)w;
  }
  free(buf);
}

static plutino_status stdout_call(plutino_context* ctx, void* state, int32_t nargs,
                                  const struct ArrowArray* const* args,
                                  const struct ArrowSchema* const* types, int64_t n,
                                  struct ArrowArray* out, struct ArrowSchema* out_type) {
  (void)state;
  (void)nargs;
  flood_stdout();
  return id_copy(ctx, args[0], types[0], n, out, out_type);
}

static const plutino_function stdout_fn = {
    sizeof(plutino_function), PLUTINO_FN_VOLATILE, NAME, 1, 1, id_validate, NULL, NULL, stdout_call, NULL};

static const plutino_function* const functions[] = {&stdout_fn};

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", functions)
