/* Loader fixture: a source without next(), a required callback. Refused after dlopen. */
#include "fixture.h"

PLUTINO_TEST_MARKER("missing_callback")

static const plutino_source_api source = {
    sizeof(plutino_source_api), fx_create, fx_schema, NULL, NULL /* next */, NULL, fx_close};

PLUTINO_DECLARE_SOURCE("missing_callback", "1.0.0", &source)
