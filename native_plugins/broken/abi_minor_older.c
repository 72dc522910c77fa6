/* Loader fixture: a well-formed sink that targets ABI 1.0 (PLUTINO_TARGET_ABI_MINOR): the
** host, speaking 1.1, accepts the older minor. */
#define PLUTINO_TARGET_ABI_MINOR 0
#include "fixture.h"

PLUTINO_TEST_MARKER("abi_minor_older")

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_DECLARE_SINK("abi_minor_older", "1.0.0", &sink)
