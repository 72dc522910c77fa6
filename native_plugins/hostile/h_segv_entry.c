/* Hostile fixture: a function library (h_segv_entry(x) -> x, an identity over int64 or
** float64) with a valid tag and descriptor whose entry, plutino_plugin_v1(), crashes with
** SIGSEGV (a write through a NULL pointer) instead of returning the descriptor. Inspecting the
** tag succeeds and dlopen succeeds; the host's call of the entry kills the process. */
#define NAME "h_segv_entry"
#define HOSTILE_FN_FLAGS 0
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

/* PLUTINO_DECLARE_FUNCTIONS, taken apart: the tag and the descriptor as it writes them, and a
** hand-written entry that crashes before it can return the descriptor. */
HOSTILE_TAG_AND_DESCRIPTOR("1.0.0");

PLUTINO_EXTERN_C PLUTINO_EXPORT const plutino_plugin* plutino_plugin_v1(void) {
  volatile int* volatile p = NULL; /* volatile twice: the compiler can neither drop nor "trap" it */
  *p = 42;
  return &hostile_descriptor;
}
