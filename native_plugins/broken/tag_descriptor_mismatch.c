/* Loader fixture: the tag calls the plugin "tag_descriptor_mismatch", the descriptor
** "another_name". Refused after dlopen, when the descriptor is compared with the tag. */
#include "fixture.h"

PLUTINO_TEST_MARKER("tag_descriptor_mismatch")

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_TAG_RECORD(PLUTINO_KIND_SINK, "tag_descriptor_mismatch", "1.0.0", PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR);
PLUTINO_DESCRIPTOR_ENTRY(PLUTINO_KIND_SINK, "another_name", "1.0.0", 0, NULL, &sink, NULL)
