/* Loader fixture: a descriptor and entry symbol but no .plutino_tag section (as if built
** without PLUTINO_DECLARE_* or stripped of the section). Refused before dlopen. */
#include "fixture.h"

PLUTINO_TEST_MARKER("no_tag")

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_DESCRIPTOR_ENTRY(PLUTINO_KIND_SINK, "no_tag", "1.0.0", 0, NULL, &sink, NULL)
