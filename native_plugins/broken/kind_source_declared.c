/* Loader fixture: a valid source. The tests load it as a sink (as if installed in
** plugins/sinks/): refused from its tag, before dlopen. */
#include "fixture.h"

PLUTINO_TEST_MARKER("kind_source_declared")

static const plutino_source_api source = FX_SOURCE_API;

PLUTINO_DECLARE_SOURCE("kind_source_declared", "1.0.0", &source)
