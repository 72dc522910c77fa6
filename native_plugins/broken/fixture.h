/*
** fixture.h -- shared pieces of the loader's test fixtures (native_plugins/broken/).
**
** Not an example to follow: these plugins exist to be refused, or to exercise the loader.
**
**   PLUTINO_TEST_MARKER(name)  a constructor that appends `name` to the file named by the
**                              environment variable PLUTINO_TEST_MARKER. dlopen runs it, so a
**                              test that finds no marker proves the plugin's code never ran.
**   fx_* callbacks             a trivial sink and source (FX_SINK_API, FX_SOURCE_API) for
**                              fixtures whose point is their tag or descriptor.
**   fx_json_*                  just enough JSON reading for the fixtures' configs (no escapes).
*/
#ifndef PLUTINO_BROKEN_FIXTURE_H
#define PLUTINO_BROKEN_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plutino/plutino_helpers.h"

#define PLUTINO_TEST_MARKER(NAME)                                        \
  __attribute__((constructor)) static void plutino_test_marker(void) {  \
    const char* path = getenv("PLUTINO_TEST_MARKER");                   \
    if (path && *path) {                                                \
      FILE* f = fopen(path, "a");                                       \
      if (f) {                                                          \
        fputs(NAME "\n", f);                                            \
        fclose(f);                                                      \
      }                                                                 \
    }                                                                   \
  }

/* ---------------------------------------------------------------- trivial callbacks */

static inline plutino_status fx_create(plutino_context* ctx, const char* config_json, void** out) {
  (void)ctx;
  (void)config_json;
  *out = NULL;
  return PLUTINO_OK;
}

static inline plutino_status fx_write(plutino_context* ctx, void* instance,
                                      const struct ArrowSchema* schema, const struct ArrowArray* batch) {
  (void)ctx;
  (void)instance;
  (void)schema;
  (void)batch;
  return PLUTINO_OK;
}

static inline void fx_close(plutino_context* ctx, void* instance) {
  (void)ctx;
  (void)instance;
}

/* One int64 column "n". */
static inline plutino_status fx_schema(plutino_context* ctx, void* instance, struct ArrowSchema* out) {
  (void)ctx;
  (void)instance;
  if (plutino_schema_struct(out, "", 1) != PLUTINO_OK) return PLUTINO_NOMEM;
  if (plutino_schema_make(out->children[0], "l", "n") != PLUTINO_OK) {
    out->release(out);
    return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

static inline plutino_status fx_next(plutino_context* ctx, void* instance, int64_t timeout_us,
                                     struct ArrowArray* out) {
  (void)ctx;
  (void)instance;
  (void)timeout_us;
  (void)out;
  return PLUTINO_EOF;
}

#define FX_SINK_API {sizeof(plutino_sink_api), fx_create, NULL, fx_write, NULL, NULL, fx_close}
#define FX_SOURCE_API {sizeof(plutino_source_api), fx_create, fx_schema, NULL, fx_next, NULL, fx_close}

/* ---------------------------------------------------------------- config JSON */

static inline const char* fx_json_find(const char* json, const char* key) {
  char pattern[96];
  const char* p;
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  p = json ? strstr(json, pattern) : NULL;
  if (!p) return NULL;
  p += strlen(pattern);
  while (*p == ' ') p++;
  return p;
}

static inline long long fx_json_int(const char* json, const char* key, long long dflt) {
  const char* p = fx_json_find(json, key);
  return p ? strtoll(p, NULL, 10) : dflt;
}

static inline int fx_json_bool(const char* json, const char* key) {
  const char* p = fx_json_find(json, key);
  return p && strncmp(p, "true", 4) == 0;
}

/* Copy the string value of `key` into out (cap bytes). Returns 1 when found, else 0. */
static inline int fx_json_str(const char* json, const char* key, char* out, size_t cap) {
  const char* p = fx_json_find(json, key);
  size_t n = 0;
  if (!p || *p != '"' || cap == 0) return 0;
  p++;
  while (*p && *p != '"' && n + 1 < cap) out[n++] = *p++;
  out[n] = '\0';
  return 1;
}

#endif /* PLUTINO_BROKEN_FIXTURE_H */
