/* Hostile fixture: h_segv_call(x) -> x, an identity over int64 or float64 that crashes the
** process with SIGSEGV (a write through a NULL pointer) on the 3rd call.
**
** Calls are counted per process (a static counter in the .so, shared by every instance):
** calls 1 and 2 return their argument unchanged; the 3rd never returns. */
#define NAME "h_segv_call"
#define HOSTILE_FN_FLAGS PLUTINO_FN_VOLATILE
#define HOSTILE_BEFORE_CALL /* hostile_before_call() below */
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

static plutino_status hostile_before_call(plutino_context* ctx, int call) {
  (void)ctx;
  if (call >= 3) {
    volatile int* volatile p = NULL; /* volatile twice: the compiler can neither drop nor "trap" it */
    *p = 42;
  }
  return PLUTINO_OK;
}

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", hostile_functions)
