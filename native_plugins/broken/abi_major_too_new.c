/* Loader fixture: a sink whose tag says it was built for ABI 2.0. The host (ABI 1.x) must
** refuse it from the file alone, before dlopen: its constructor must never run. */
#include "fixture.h"

PLUTINO_TEST_MARKER("abi_major_too_new")

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_TAG_RECORD(PLUTINO_KIND_SINK, "abi_major_too_new", "1.0.0", 2, 0);
PLUTINO_DESCRIPTOR_ENTRY(PLUTINO_KIND_SINK, "abi_major_too_new", "1.0.0", 0, NULL, &sink, NULL)
