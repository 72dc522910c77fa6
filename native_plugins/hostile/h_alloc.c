/* Hostile fixture: h_alloc(x) -> x, an identity over int64 or float64 that tries to eat
** 10 GiB of memory on the 3rd and every later call: malloc(10 GiB), then memset all of it
** (touching every page), free it and return x. When malloc returns NULL the call fails with
** PLUTINO_NOMEM and the message "out of memory: could not allocate 10 GiB". Under a memory
** limit (cgroup, OOM killer) the process may instead be killed while touching the pages.
**
** Calls are counted per process (a static counter in the .so, shared by every instance):
** calls 1 and 2 return their argument unchanged without allocating. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAME "h_alloc"
#define HOSTILE_FN_FLAGS PLUTINO_FN_VOLATILE
#define HOSTILE_BEFORE_CALL /* hostile_before_call() below */
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

#define GIB ((size_t)1 << 30)

/* Allocate 10 GiB and write every byte of it (every page becomes resident), then free it.
** Returns 0 when malloc refuses (an address-space limit, overcommit off, a 32-bit build). */
static int eat_10_gib(void) {
  char* volatile p;
  if (SIZE_MAX / GIB < 10) return 0;
  p = (char*)malloc(10 * GIB);
  if (!p) return 0;
  memset(p, 'x', 10 * GIB);
  __asm__ __volatile__("" : : "r"(p) : "memory"); /* keep the compiler from eliding the memset */
  free(p);
  return 1;
}

static plutino_status hostile_before_call(plutino_context* ctx, int call) {
  if (call >= 3 && !eat_10_gib())
    return plutino_set_error(ctx, "out of memory: could not allocate 10 GiB"), PLUTINO_NOMEM;
  return PLUTINO_OK;
}

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", hostile_functions)
