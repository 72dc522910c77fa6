/* Loader fixture: a valid tag, but no plutino_plugin_v1 entry symbol. Passes inspection,
** is dlopen'ed (its constructor runs), then refused for the missing entry. */
#include "fixture.h"

PLUTINO_TEST_MARKER("no_entry")

PLUTINO_TAG_RECORD(PLUTINO_KIND_SINK, "no_entry", "1.0.0", PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR);
