/* Hostile fixture: an endless source that crashes the process with SIGSEGV (a write through a
** NULL pointer) in next() on its 3rd call.
**
** Rows: x int64, 4 rows per batch (0, 1, 2, ... across the batches of an instance). Every
** next() returns a batch at once (never PLUTINO_AGAIN, never PLUTINO_EOF); the config is
** ignored. next() calls are counted per process (a static counter in the .so, shared by every
** instance): calls 1 and 2 return a batch; the 3rd never returns. */
#define HOSTILE_BEFORE_NEXT /* hostile_before_next() below */
#include "hostile_source.h"

/* ---------------------------------------------------------------- the hostile part */

static void hostile_before_next(int call) {
  if (call >= 3) {
    volatile int* volatile p = NULL; /* volatile twice: the compiler can neither drop nor "trap" it */
    *p = 42;
  }
}

PLUTINO_DECLARE_SOURCE("h_segv_next", "1.0.0", &hostile_source)
