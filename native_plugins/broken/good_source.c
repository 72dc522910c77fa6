/* Loader fixture (well-formed): a bounded counter source exercising NativeSource.
**
** Config: "batch" rows per batch (default 4, must be > 0), "batches" batches before EOF
** (default 3), "idle_first" (first next() returns PLUTINO_AGAIN), "fail_at" (the batch index
** at which next() fails with a message; default -1: never), "ack_log" (a file each
** acknowledgement appends its batch number to, one per line: ack(), ABI 1.1).
** Rows: n int64 (0, 1, 2, ... across batches), label utf8 ("row-<n>").
*/
#include "fixture.h"

PLUTINO_TEST_MARKER("good_source")

typedef struct counter {
  long long batch, batches, fail_at, emitted, next_n;
  int idle_first, opened;
  char ack_log[512];
} counter;

static plutino_status counter_create(plutino_context* ctx, const char* config_json, void** out) {
  counter* c;
  long long batch = fx_json_int(config_json, "batch", 4);
  *out = NULL;
  if (batch <= 0)
    return plutino_set_error(ctx, "batch must be > 0, got %lld; set \"batch\" to the rows per batch", batch),
           PLUTINO_INVALID;
  c = (counter*)calloc(1, sizeof *c);
  if (!c) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  c->batch = batch;
  c->batches = fx_json_int(config_json, "batches", 3);
  c->fail_at = fx_json_int(config_json, "fail_at", -1);
  c->idle_first = fx_json_bool(config_json, "idle_first");
  fx_json_str(config_json, "ack_log", c->ack_log, sizeof c->ack_log);
  *out = c;
  return PLUTINO_OK;
}

static plutino_status counter_schema(plutino_context* ctx, void* instance, struct ArrowSchema* out) {
  (void)ctx;
  (void)instance;
  if (plutino_schema_struct(out, "", 2) != PLUTINO_OK) return PLUTINO_NOMEM;
  if (plutino_schema_make(out->children[0], "l", "n") != PLUTINO_OK ||
      plutino_schema_make(out->children[1], "u", "label") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

static plutino_status counter_open(plutino_context* ctx, void* instance) {
  ((counter*)instance)->opened = 1;
  plutino_log(ctx, PLUTINO_LOG_DEBUG, "counter opened");
  return PLUTINO_OK;
}

static plutino_status counter_next(plutino_context* ctx, void* instance, int64_t timeout_us,
                                   struct ArrowArray* out) {
  counter* c = (counter*)instance;
  plutino_strings labels;
  int64_t* n;
  int64_t i;
  (void)timeout_us;
  if (c->idle_first) {
    c->idle_first = 0;
    return PLUTINO_AGAIN;
  }
  if (c->emitted == c->fail_at)
    return plutino_set_error(ctx, "device unplugged before batch %lld", c->emitted), PLUTINO_ERROR;
  if (c->emitted >= c->batches) return PLUTINO_EOF;
  if (plutino_batch_struct(ctx, out, c->batch, 2) != PLUTINO_OK) return PLUTINO_NOMEM;
  n = plutino_result_i64(ctx, out->children[0], c->batch);
  if (!n) { out->release(out); return PLUTINO_NOMEM; }
  if (plutino_strings_init(ctx, &labels, c->batch, (size_t)c->batch * 12) != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  for (i = 0; i < c->batch; i++) {
    char text[32];
    int len = snprintf(text, sizeof text, "row-%lld", c->next_n);
    n[i] = c->next_n++;
    if (plutino_strings_append(&labels, text, (size_t)len) != PLUTINO_OK) {
      plutino_strings_abort(&labels);
      out->release(out);
      return PLUTINO_NOMEM;
    }
  }
  if (plutino_strings_finish(&labels, out->children[1]) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  c->emitted++;
  return PLUTINO_OK;
}

static int32_t counter_status(plutino_context* ctx, void* instance) {
  (void)ctx;
  return ((counter*)instance)->opened ? PLUTINO_CONN_CONNECTED : PLUTINO_CONN_CONNECTING;
}

static void counter_close(plutino_context* ctx, void* instance) {
  (void)ctx;
  free(instance);
}

#if PLUTINO_ABI_MINOR >= 1
static plutino_status counter_ack(plutino_context* ctx, void* instance, int64_t seq) {
  counter* c = (counter*)instance;
  FILE* f;
  if (!c->ack_log[0]) return PLUTINO_OK;
  f = fopen(c->ack_log, "a");
  if (!f) return plutino_set_error(ctx, "cannot open ack_log %s", c->ack_log), PLUTINO_IO;
  fprintf(f, "%lld\n", (long long)seq);
  fclose(f);
  return PLUTINO_OK;
}
#define COUNTER_ACK , counter_ack
#else /* built against a 1.0 header: no ack() slot, at-most-once */
#define COUNTER_ACK
#endif

static const plutino_source_api source = {sizeof(plutino_source_api), counter_create, counter_schema,
                                          counter_open, counter_next, counter_status, counter_close COUNTER_ACK};

PLUTINO_DECLARE_SOURCE("good_source", "1.0.0", &source)
