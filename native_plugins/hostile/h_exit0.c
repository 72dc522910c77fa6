/* Hostile fixture: h_exit0(x) -> x, an identity over int64 or float64 that calls exit(0) on
** the 3rd call: the process ends with status 0, as if it had finished normally (C atexit
** handlers run; the host's own shutdown code does not).
**
** Calls are counted per process (a static counter in the .so, shared by every instance):
** calls 1 and 2 return their argument unchanged; the 3rd never returns. */
#include <stdlib.h>

#define NAME "h_exit0"
#define HOSTILE_FN_FLAGS PLUTINO_FN_VOLATILE
#define HOSTILE_BEFORE_CALL /* hostile_before_call() below */
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

static plutino_status hostile_before_call(plutino_context* ctx, int call) {
  (void)ctx;
  if (call >= 3) {
    exit(0);
  }
  return PLUTINO_OK;
}

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", hostile_functions)
