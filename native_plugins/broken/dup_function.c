/* Loader fixture: a function library listing two functions named "twice" (SQL names are
** case-insensitive, so "TWICE" would collide as well). Refused after dlopen. */
#include "fixture.h"

PLUTINO_TEST_MARKER("dup_function")

static plutino_status twice_call(plutino_context* ctx, void* state, int32_t nargs,
                                 const struct ArrowArray* const* args,
                                 const struct ArrowSchema* const* types, int64_t n,
                                 struct ArrowArray* out, struct ArrowSchema* out_type) {
  (void)state; (void)nargs; (void)args; (void)types; (void)n; (void)out; (void)out_type;
  return plutino_set_error(ctx, "never called"), PLUTINO_ERROR;
}

static const plutino_function twice_a = {
    sizeof(plutino_function), 0, "twice", 1, 1, NULL, NULL, NULL, twice_call, NULL};
static const plutino_function twice_b = {
    sizeof(plutino_function), 0, "twice", 1, 1, NULL, NULL, NULL, twice_call, NULL};

static const plutino_function* const functions[] = {&twice_a, &twice_b};

PLUTINO_DECLARE_FUNCTIONS("dup_function", "1.0.0", functions)
