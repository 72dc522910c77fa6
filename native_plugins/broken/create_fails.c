/* Loader fixture: a sink whose create() always refuses its config with a message.
** The host must raise PluginCallError carrying that message, and keep running. */
#include "fixture.h"

PLUTINO_TEST_MARKER("create_fails")

static plutino_status create_fails_create(plutino_context* ctx, const char* config_json, void** out) {
  (void)config_json;
  *out = NULL;
  plutino_set_error(ctx, "path is required; set \"path\" in the action's properties");
  return PLUTINO_INVALID;
}

static const plutino_sink_api sink = {
    sizeof(plutino_sink_api), create_fails_create, NULL, fx_write, NULL, NULL, fx_close};

PLUTINO_DECLARE_SINK("create_fails", "1.0.0", &sink)
