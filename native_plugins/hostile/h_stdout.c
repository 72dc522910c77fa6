/* Hostile fixture: h_stdout(x) -> x, an identity over int64 or float64 that writes 1 MiB to
** the process's stdout on every call (fd 1, with write(2), so no stdio buffering): lines of
** 99 'x' bytes and a newline. Then it returns x normally. With nobody reading a piped stdout,
** the call blocks once the pipe is full. */
#include <errno.h>
#include <unistd.h>

#define NAME "h_stdout"
#define HOSTILE_FN_FLAGS PLUTINO_FN_VOLATILE
#define HOSTILE_BEFORE_CALL /* hostile_before_call() below */
#include "hostile_identity.h"

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

/* Every call, whatever its number. */
static plutino_status hostile_before_call(plutino_context* ctx, int call) {
  (void)ctx;
  (void)call;
  flood_stdout();
  return PLUTINO_OK;
}

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", hostile_functions)
