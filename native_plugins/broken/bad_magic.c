/* Loader fixture: a tag section whose magic is "NOTPLUG" instead of "PLUTINO".
** Refused before dlopen. */
#include "fixture.h"

PLUTINO_TEST_MARKER("bad_magic")

static const plutino_sink_api sink = FX_SINK_API;

static PLUTINO_TAG_ATTR const plutino_tag plutino_tag_record = {
    "NOTPLUG", (uint16_t)sizeof(plutino_tag), PLUTINO_TAG_FORMAT, PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR,
    PLUTINO_KIND_SINK, PLUTINO_TAG_BYTE_ORDER, (uint8_t)sizeof(void*), 0, PLUTINO_TAG_OS,
    PLUTINO_TAG_ARCH, PLUTINO_TAG_LIBC, "bad_magic", "1.0.0", PLUTINO_CONTRACT_VERSION, {0}};

PLUTINO_DESCRIPTOR_ENTRY(PLUTINO_KIND_SINK, "bad_magic", "1.0.0", 0, NULL, &sink, NULL)
