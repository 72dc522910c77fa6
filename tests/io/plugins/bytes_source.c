/*
** bytes_source.c -- a test source of the I/O tests: a *bytes* source, whose batches have one
** binary column "payload" that the host decodes by the stream's FORMAT, as it decodes MQTT
** messages.
**
** Every next() gives one batch of the four messages below, until "batches" batches (config,
** default 1) have been given; then PLUTINO_EOF (a bounded stream).
**
**   CREATE STREAM s (id BIGINT, temperature FLOAT) WITH (TYPE="bytes_source", FORMAT="json");
*/
#include <stdlib.h>
#include <string.h>

#include "plutino/plutino_helpers.h"

static const char* const MESSAGES[] = {
    "{\"id\": 1, \"temperature\": 21.5}",
    "{\"id\": 2, \"temperature\": 19.0}",
    "{\"id\": 3, \"temperature\": 25.0, \"extra\": \"ignored by a declared schema\"}",
    "{\"id\": 4, \"temperature\": 30.5}",
};
#define NMESSAGES 4

typedef struct bytes_source {
  long batches, given;
} bytes_source;

static plutino_status bs_create(plutino_context* ctx, const char* config_json, void** out) {
  bytes_source* s = (bytes_source*)calloc(1, sizeof *s);
  const char* p = strstr(config_json, "\"batches\"");
  if (!s) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  s->batches = 1;
  if (p && (p = strchr(p, ':'))) s->batches = strtol(p + 1, NULL, 10);
  *out = s;
  return PLUTINO_OK;
}

static plutino_status bs_schema(plutino_context* ctx, void* instance, struct ArrowSchema* out) {
  (void)ctx;
  (void)instance;
  if (plutino_schema_struct(out, "", 1) != PLUTINO_OK) return PLUTINO_NOMEM;
  if (plutino_schema_make(out->children[0], "z", "payload") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

static plutino_status bs_open(plutino_context* ctx, void* instance) {
  (void)ctx;
  (void)instance;
  return PLUTINO_OK;
}

static plutino_status bs_next(plutino_context* ctx, void* instance, int64_t timeout_us, struct ArrowArray* out) {
  bytes_source* s = (bytes_source*)instance;
  plutino_strings payloads;
  int i;
  (void)timeout_us;
  if (s->given >= s->batches) return PLUTINO_EOF;
  if (plutino_batch_struct(ctx, out, NMESSAGES, 1) != PLUTINO_OK) return PLUTINO_NOMEM;
  if (plutino_strings_init(ctx, &payloads, NMESSAGES, 256) != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  for (i = 0; i < NMESSAGES; i++) {
    if (plutino_strings_append(&payloads, MESSAGES[i], strlen(MESSAGES[i])) != PLUTINO_OK) {
      plutino_strings_abort(&payloads);
      out->release(out);
      return PLUTINO_NOMEM;
    }
  }
  if (plutino_strings_finish(&payloads, out->children[0]) != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  s->given++;
  return PLUTINO_OK;
}

static int32_t bs_status(plutino_context* ctx, void* instance) {
  (void)ctx;
  (void)instance;
  return PLUTINO_CONN_CONNECTED;
}

static void bs_close(plutino_context* ctx, void* instance) {
  (void)ctx;
  free(instance);
}

static const plutino_source_api source = {sizeof(plutino_source_api), bs_create, bs_schema, bs_open,
                                          bs_next, bs_status, bs_close};

PLUTINO_DECLARE_SOURCE("bytes_source", "1.0.0", &source)
