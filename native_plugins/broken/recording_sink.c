/* Engine fixture (well-formed): a sink that records every batch it is given, to show what the
** host hands a native sink (common properties applied, retries, flushes).
**
** Each batch becomes one line of the file at config "path" (required): a JSON array of its
** rows, {"column": value, ...}. Columns of type int64, float64, bool, null, utf8, large utf8
** and binary (written as a string) are recorded; another type fails the write (INVALID).
**
**   "fail_writes": n     the first n write() calls fail with PLUTINO_IO (nothing recorded)
**   "buffered": true     lines are held in memory until flush(); close() does NOT write them
**                        (so a test sees whether the host flushed before closing)
**   "config_path": "..." create() writes the config JSON it received to this file
*/
#include "fixture.h"

PLUTINO_TEST_MARKER("recording_sink")

typedef struct recorder {
  char path[512];
  long long fail_writes;
  int buffered;
  char* buf;
  size_t len, cap;
} recorder;

static int rec_put(recorder* r, const char* s, size_t n) {
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 1024;
    char* p;
    while (cap < r->len + n + 1) cap *= 2;
    if (!(p = (char*)realloc(r->buf, cap))) return -1;
    r->buf = p;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, s, n);
  r->len += n;
  return 0;
}

static int rec_str(recorder* r, const char* s, size_t n) {
  size_t i;
  char esc[8];
  if (rec_put(r, "\"", 1)) return -1;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c;
      if (rec_put(r, esc, 2)) return -1;
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      if (rec_put(r, esc, 6)) return -1;
    } else if (rec_put(r, (const char*)&s[i], 1)) {
      return -1;
    }
  }
  return rec_put(r, "\"", 1);
}

static int rec_value(recorder* r, const struct ArrowSchema* s, const struct ArrowArray* a, int64_t row) {
  char tmp[40];
  const char* f = s->format;
  int64_t i = row; /* the helpers add the column's own offset */
  if (strcmp(f, "n") == 0 || !plutino_is_valid(a, i)) return rec_put(r, "null", 4);
  if (strcmp(f, "l") == 0) return rec_put(r, tmp, (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)plutino_i64(a)[i]));
  if (strcmp(f, "g") == 0) return rec_put(r, tmp, (size_t)snprintf(tmp, sizeof tmp, "%.17g", plutino_f64(a)[i]));
  if (strcmp(f, "b") == 0) return plutino_bool(a, i) ? rec_put(r, "true", 4) : rec_put(r, "false", 5);
  if (strcmp(f, "u") == 0 || strcmp(f, "z") == 0) {
    int32_t n;
    const char* p = plutino_str(a, i, &n);
    return rec_str(r, p, (size_t)n);
  }
  {
    int64_t n;
    const char* p = plutino_large_str(a, i, &n);
    return rec_str(r, p, (size_t)n);
  }
}

static plutino_status rec_drain(plutino_context* ctx, recorder* r) {
  FILE* f;
  if (r->len == 0) return PLUTINO_OK;
  if (!(f = fopen(r->path, "a"))) return plutino_set_error(ctx, "cannot open %s", r->path), PLUTINO_IO;
  fwrite(r->buf, 1, r->len, f);
  fclose(f);
  r->len = 0;
  return PLUTINO_OK;
}

static plutino_status rec_create(plutino_context* ctx, const char* config_json, void** out) {
  recorder* r = (recorder*)calloc(1, sizeof *r);
  char config_path[512];
  *out = NULL;
  if (!r) return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  if (!fx_json_str(config_json, "path", r->path, sizeof r->path) || !r->path[0]) {
    free(r);
    return plutino_set_error(ctx, "path is required; set \"path\" to the file to record to"), PLUTINO_INVALID;
  }
  r->fail_writes = fx_json_int(config_json, "fail_writes", 0);
  r->buffered = fx_json_bool(config_json, "buffered");
  if (fx_json_str(config_json, "config_path", config_path, sizeof config_path)) {
    FILE* f = fopen(config_path, "w");
    if (f) {
      fputs(config_json ? config_json : "", f);
      fclose(f);
    }
  }
  *out = r;
  return PLUTINO_OK;
}

static plutino_status rec_write(plutino_context* ctx, void* instance, const struct ArrowSchema* schema,
                                const struct ArrowArray* batch) {
  recorder* r = (recorder*)instance;
  size_t start = r->len;
  int64_t i, c;
  if (r->fail_writes > 0) {
    r->fail_writes--;
    return plutino_set_error(ctx, "the server is away (fixture)"), PLUTINO_IO;
  }
  for (c = 0; c < schema->n_children; c++) {
    const char* f = schema->children[c]->format;
    if (strcmp(f, "l") && strcmp(f, "g") && strcmp(f, "b") && strcmp(f, "n") && strcmp(f, "u") &&
        strcmp(f, "U") && strcmp(f, "z"))
      return plutino_set_error(ctx, "column %s has format '%s', which the fixture does not record",
                               schema->children[c]->name, f), PLUTINO_INVALID;
  }
  if (rec_put(r, "[", 1)) goto nomem;
  for (i = 0; i < batch->length; i++) {
    if (i && rec_put(r, ",", 1)) goto nomem;
    if (rec_put(r, "{", 1)) goto nomem;
    for (c = 0; c < schema->n_children; c++) {
      const char* name = schema->children[c]->name ? schema->children[c]->name : "";
      if ((c && rec_put(r, ",", 1)) || rec_str(r, name, strlen(name)) || rec_put(r, ":", 1) ||
          rec_value(r, schema->children[c], batch->children[c], batch->offset + i))
        goto nomem;
    }
    if (rec_put(r, "}", 1)) goto nomem;
  }
  if (rec_put(r, "]\n", 2)) goto nomem;
  return r->buffered ? PLUTINO_OK : rec_drain(ctx, r);
nomem:
  r->len = start;
  return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
}

static plutino_status rec_flush(plutino_context* ctx, void* instance) {
  return rec_drain(ctx, (recorder*)instance);
}

static void rec_close(plutino_context* ctx, void* instance) {
  recorder* r = (recorder*)instance;
  (void)ctx;
  free(r->buf);
  free(r);
}

static const plutino_sink_api sink = {sizeof(plutino_sink_api), rec_create, NULL, rec_write,
                                      rec_flush, NULL, rec_close};

PLUTINO_DECLARE_SINK("recording_sink", "1.0.0", &sink)
