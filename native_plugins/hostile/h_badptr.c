/* Hostile fixture: h_badptr(x) -> x, an identity over int64 or float64 whose 3rd call returns
** PLUTINO_OK with a result array of the right length and type whose data buffer pointer is a
** bogus address (0x10): the host crashes (SIGSEGV) when it reads the values, not in the
** plugin. Later calls do the same.
**
** Calls are counted per process (a static counter in the .so, shared by every instance):
** calls 1 and 2 return their argument unchanged. */
#define NAME "h_badptr"
#define HOSTILE_FN_FLAGS PLUTINO_FN_VOLATILE
#define HOSTILE_AFTER_CALL /* hostile_after_call() below */
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

#define BOGUS ((const void*)0x10)

/* From the 3rd call on, the identity's well-formed result of n rows gets its data pointer
** swapped for a bogus address. The release callback still frees the real buffer (the helpers
** keep it apart). */
static void hostile_after_call(int call, struct ArrowArray* out) {
  if (call < 3) return;
  if (out->buffers[0]) { /* drop the validity bitmap: every row claims a value */
    out->buffers[0] = NULL;
    out->null_count = 0;
  }
  out->buffers[1] = BOGUS;
}

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", hostile_functions)
