/* Loader fixture: a well-formed sink built for ABI 1.0. The tests load it into a host
** speaking ABI 1.1 (host_abi=(1, 1)) to show that an older minor is accepted; the real host
** speaks 1.0, which has no older minor. */
#include "fixture.h"

PLUTINO_TEST_MARKER("abi_minor_older")

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_DECLARE_SINK("abi_minor_older", "1.0.0", &sink)
