/* Hostile fixture: h_grow(x) -> x, an identity over int64 or float64 that leaks memory: from
** the 3rd call on, each call allocates 128 MiB, writes every byte of it (every page becomes
** resident) and keeps it. No single allocation is large, so an address-space limit does not
** stop it early; the worker's resident memory grows by 128 MiB a call until the supervisor's
** memory limit kills the worker.
**
** Calls are counted per process (a static counter in the .so, shared by every instance). */
#include <stdlib.h>
#include <string.h>

#define NAME "h_grow"
#define HOSTILE_FN_FLAGS PLUTINO_FN_VOLATILE
#define HOSTILE_BEFORE_CALL /* hostile_before_call() below */
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

#define LEAK ((size_t)128 << 20)

static plutino_status hostile_before_call(plutino_context* ctx, int call) {
  char* volatile p;
  if (call < 3) return PLUTINO_OK;
  p = (char*)malloc(LEAK);
  if (!p) return plutino_set_error(ctx, "out of memory: could not allocate 128 MiB"), PLUTINO_NOMEM;
  memset(p, 'x', LEAK);
  __asm__ __volatile__("" : : "r"(p) : "memory"); /* kept, never freed: that is the leak */
  return PLUTINO_OK;
}

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", hostile_functions)
