/* Loader fixture: a descriptor whose struct_size (16) is smaller than ABI 1.0's
** plutino_plugin. The host must refuse it without reading past those 16 bytes. */
#include "fixture.h"

PLUTINO_TEST_MARKER("struct_size_too_small")

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_TAG_RECORD(PLUTINO_KIND_SINK, "struct_size_too_small", "1.0.0", PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR);

static const plutino_plugin descriptor = {
    16, PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR, PLUTINO_KIND_SINK, 0, "struct_size_too_small", "1.0.0",
    PLUTINO_CONTRACT_VERSION, NULL, &sink, NULL};

PLUTINO_EXPORT const plutino_plugin* plutino_plugin_v1(void) { return &descriptor; }
