/* Loader fixture: a valid sink with a constructor that writes a marker file. Loading it
** writes the marker (the tests' proof that the marker works); copies of it patched to
** another machine or ELF class are refused before dlopen and write nothing. */
#include "fixture.h"

PLUTINO_TEST_MARKER("constructor_marker")

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_DECLARE_SINK("constructor_marker", "1.0.0", &sink)
