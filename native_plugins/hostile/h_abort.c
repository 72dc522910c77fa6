/* Hostile fixture: h_abort(x) -> x, an identity over int64 or float64 that calls abort() on
** the 3rd call (the process dies of SIGABRT).
**
** Calls are counted per process (a static counter in the .so, shared by every instance):
** calls 1 and 2 return their argument unchanged; the 3rd never returns. */
#include <stdlib.h>

#define NAME "h_abort"
#define HOSTILE_FN_FLAGS PLUTINO_FN_VOLATILE
#define HOSTILE_BEFORE_CALL /* hostile_before_call() below */
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

static plutino_status hostile_before_call(plutino_context* ctx, int call) {
  (void)ctx;
  if (call >= 3) {
    abort();
  }
  return PLUTINO_OK;
}

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", hostile_functions)
