/* Loader fixture: a well-formed sink built for ABI 1.2 (tag and descriptor both say 1.2).
** A 1.1 host refuses it before dlopen; a host speaking 1.2 (injected in the tests) loads it. */
#include "fixture.h"

PLUTINO_TEST_MARKER("abi_minor_too_new")

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_TAG_RECORD(PLUTINO_KIND_SINK, "abi_minor_too_new", "1.0.0", 1, 2);

static const plutino_plugin descriptor = {
    sizeof(plutino_plugin), 1, 2, PLUTINO_KIND_SINK, 0, "abi_minor_too_new", "1.0.0",
    PLUTINO_CONTRACT_VERSION, NULL, &sink, NULL};

PLUTINO_EXPORT const plutino_plugin* plutino_plugin_v1(void) { return &descriptor; }
