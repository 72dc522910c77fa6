/*
** count_sink.c -- the sink "count" of the pipeline benchmark: it counts rows, and nothing else.
**
** The end of bench/pipeline.py's pipeline (native source -> WHERE -> native function -> sink)
** must cost next to nothing, so that the figures are the host's and not a sink's: write() adds
** the batch's length to a counter. On close (and flush) it writes "rows=<n> batches=<b>\n" to
** the file at config "path", when one is given, so the benchmark can check that every row
** arrived. bench/_harness.py compiles it into build/bench-native/bench/count.so at run time.
**
** Config: {"path": "/tmp/count.txt"} (optional).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plutino/plutino_helpers.h"
#include "plutino/plutino_json.h"

typedef struct count_sink {
  char path[1024];
  long long rows, batches;
} count_sink;

static plutino_status count_create(plutino_context* ctx, const char* config_json, void** out) {
  plutino_json doc;
  count_sink* c;
  int32_t t;
  *out = NULL;
  if (plutino_json_parse(&doc, config_json, config_json ? strlen(config_json) : 0, NULL, 0) != 0) {
    plutino_set_error(ctx, "count: the config is not valid JSON (%s)", doc.error);
    plutino_json_free(&doc);
    return PLUTINO_INVALID;
  }
  c = (count_sink*)calloc(1, sizeof *c);
  if (!c) {
    plutino_json_free(&doc);
    return plutino_set_error(ctx, "count: out of memory"), PLUTINO_NOMEM;
  }
  t = plutino_json_find(&doc, 0, "path");
  if (t >= 0 && plutino_json_type(&doc, t) == PLUTINO_JSON_STRING)
    plutino_json_string(&doc, t, c->path, sizeof c->path);
  plutino_json_free(&doc);
  *out = c;
  return PLUTINO_OK;
}

static plutino_status count_write(plutino_context* ctx, void* instance, const struct ArrowSchema* schema,
                                  const struct ArrowArray* batch) {
  count_sink* c = (count_sink*)instance;
  (void)ctx;
  (void)schema;
  c->rows += batch->length;
  c->batches += 1;
  return PLUTINO_OK;
}

static plutino_status count_flush(plutino_context* ctx, void* instance) {
  count_sink* c = (count_sink*)instance;
  FILE* f;
  if (!c->path[0]) return PLUTINO_OK;
  if (!(f = fopen(c->path, "w")))
    return plutino_set_error(ctx, "count: cannot open %s for writing; give a writable path", c->path), PLUTINO_IO;
  fprintf(f, "rows=%lld batches=%lld\n", c->rows, c->batches);
  fclose(f);
  return PLUTINO_OK;
}

static void count_close(plutino_context* ctx, void* instance) {
  count_flush(ctx, instance);
  free(instance);
}

static const plutino_sink_api count_sink_api = {
    sizeof(plutino_sink_api), count_create, NULL, count_write, count_flush, NULL, count_close,
};

PLUTINO_DECLARE_SINK("count", "1.0.0", &count_sink_api)
