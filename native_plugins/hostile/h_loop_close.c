/* Hostile fixture: an endless source that works until it is closed: its close() spins in an
** endless busy loop (100% of a CPU, never returns), so stopping a rule that reads it hangs.
**
** Rows: x int64, 4 rows per batch (0, 1, 2, ... across the batches of an instance). Every
** next() returns a batch at once (never PLUTINO_AGAIN, never PLUTINO_EOF); the config is
** ignored. */
#define HOSTILE_BEFORE_CLOSE /* hostile_before_close() below */
#include "hostile_source.h"

/* ---------------------------------------------------------------- the hostile part */

static void hostile_before_close(void) {
  volatile int spin = 1; /* volatile: a loop the compiler may not assume ends */
  while (spin) {
  }
}

PLUTINO_DECLARE_SOURCE("h_loop_close", "1.0.0", &hostile_source)
