/* Hostile fixture: a well-formed function library (h_segv_ctor(x) -> x, an identity over
** int64 or float64; valid tag, entry and descriptor) with a constructor that crashes with
** SIGSEGV (a write through a NULL pointer). dlopen runs constructors, so loading the plugin
** kills the process before the host ever calls its entry; inspecting its tag (which runs no
** plugin code) still succeeds. */
#define NAME "h_segv_ctor"
#define HOSTILE_FN_FLAGS 0
#include "hostile_identity.h"

/* ---------------------------------------------------------------- the hostile part */

/* Runs inside dlopen(), before plutino_plugin_v1 can be looked up. */
__attribute__((constructor)) static void segv_at_load(void) {
  volatile int* volatile p = NULL; /* volatile twice: the compiler can neither drop nor "trap" it */
  *p = 42;
}

PLUTINO_DECLARE_FUNCTIONS(NAME, "1.0.0", hostile_functions)
