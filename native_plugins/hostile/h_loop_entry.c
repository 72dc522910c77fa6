/* Hostile fixture: a function library (h_loop_entry(x) -> x, an identity over int64 or
** float64) with a valid tag and descriptor whose entry, plutino_plugin_v1(), spins in an
** endless busy loop instead of returning the descriptor. Inspecting the tag succeeds and dlopen
** succeeds; the host's call of the entry never returns. */
#define NAME "h_loop_entry"
#define HOSTILE_FN_FLAGS 0
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

/* PLUTINO_DECLARE_FUNCTIONS, taken apart: the tag and the descriptor as it writes them, and a
** hand-written entry that spins before it can return the descriptor. */
HOSTILE_TAG_AND_DESCRIPTOR("1.0.0");

PLUTINO_EXTERN_C PLUTINO_EXPORT const plutino_plugin* plutino_plugin_v1(void) {
  volatile int spin = 1; /* volatile: a loop the compiler may not assume ends */
  while (spin) {
  }
  return &hostile_descriptor;
}
