/* Loader fixture (well-formed): a sink exercising NativeSink. It counts rows and batches and
** sums the first column when it is int64; flush() and close() write
** "rows=<r> batches=<b> sum=<s>\n" to the file at config "path" (required). With
** "fail_write": true, write() returns PLUTINO_IO with a message (a retryable failure). */
#include "fixture.h"

PLUTINO_TEST_MARKER("good_sink")

typedef struct tally {
  char path[512];
  long long rows, batches, sum;
  int fail_write;
} tally;

static plutino_status tally_create(plutino_context* ctx, const char* config_json, void** out) {
  tally* t = (tally*)calloc(1, sizeof *t);
  *out = NULL;
  if (!t) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  if (!fx_json_str(config_json, "path", t->path, sizeof t->path) || !t->path[0]) {
    free(t);
    return plutino_set_error(ctx, "path is required; set \"path\" to the file to write the tally to"),
           PLUTINO_INVALID;
  }
  t->fail_write = fx_json_bool(config_json, "fail_write");
  *out = t;
  return PLUTINO_OK;
}

static plutino_status tally_write(plutino_context* ctx, void* instance, const struct ArrowSchema* schema,
                                  const struct ArrowArray* batch) {
  tally* t = (tally*)instance;
  int64_t i;
  if (t->fail_write) return plutino_set_error(ctx, "the disk is full (fixture)"), PLUTINO_IO;
  if (!plutino_format_is(schema, "+s"))
    return plutino_set_error(ctx, "expected a struct batch, got format '%s'", schema->format), PLUTINO_INVALID;
  t->rows += batch->length;
  t->batches += 1;
  if (batch->n_children > 0 && plutino_format_is(schema->children[0], "l")) {
    const struct ArrowArray* col = batch->children[0];
    const int64_t* v = plutino_i64(col);
    for (i = 0; i < batch->length; i++)
      if (plutino_is_valid(col, batch->offset + i)) t->sum += v[batch->offset + i];
  }
  return PLUTINO_OK;
}

static plutino_status tally_flush(plutino_context* ctx, void* instance) {
  tally* t = (tally*)instance;
  FILE* f = fopen(t->path, "w");
  if (!f) return plutino_set_error(ctx, "cannot open %s for writing", t->path), PLUTINO_IO;
  fprintf(f, "rows=%lld batches=%lld sum=%lld\n", t->rows, t->batches, t->sum);
  fclose(f);
  return PLUTINO_OK;
}

static void tally_close(plutino_context* ctx, void* instance) {
  tally_flush(ctx, instance);
  free(instance);
}

static const plutino_sink_api sink = {sizeof(plutino_sink_api), tally_create, NULL, tally_write,
                                      tally_flush, NULL, tally_close};

PLUTINO_DECLARE_SINK("good_sink", "1.0.0", &sink)
