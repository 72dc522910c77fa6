/*
** random.c -- the source "random": rows of random values shaped like a pattern.
**
** eKuiper's classic example source. Every row is a copy of `pattern` (a JSON object of scalars)
** with its values randomized:
**
**   integer v   -> uniform integer in [0, v]  ([v, 0] when v is negative)   column type int64
**   float v     -> uniform float in [0, v)                                   column type float64
**   true/false  -> random boolean                                            column type bool
**   "text"      -> "text", unchanged                                         column type utf8
**
** Columns come in pattern order. Config (random.yaml's `default:`, overlaid by the CONF_KEY
** section, overlaid by the stream's properties):
**
**   interval     ms between batches, default 1000; 0 emits as fast as the host asks
**   pattern      the row shape, e.g. {"count": 50, "temperature": 30.0, "name": "sensor"}
**   seed         optional integer: the same seed gives the same rows (reproducible runs)
**   batch_size   rows per batch, default 1
**   count        optional: emit this many rows in all, then end the stream
**
** Use it from SQL:
**
**   CREATE STREAM demo () WITH (TYPE="random", FORMAT="json", CONF_KEY="ext");
**   SELECT count, temperature FROM demo WHERE count > 40;
**
** Integer settings may also be given as strings of digits ("1000"), as SQL WITH properties are.
** Every setting is checked in create(); a wrong one fails the stream with a message naming it.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <time.h>

#include "plutino/plutino_helpers.h"
#include "plutino/plutino_json.h"

typedef struct random_column {
  char* name;
  char format[2];   /* "l" int64, "g" float64, "u" utf8, "b" bool */
  int64_t i;        /* the pattern's value, by format */
  double f;
  char* s;
  size_t slen;
} random_column;

typedef struct random_source {
  int64_t interval_us;
  int64_t batch_size;
  int64_t remaining;  /* rows left before EOF; -1: endless */
  uint64_t rng;       /* splitmix64 state: per instance, so instances never share a sequence */
  int started;
  int64_t due_us;     /* CLOCK_MONOTONIC time of the next batch */
  int64_t ncols;
  random_column* cols;
} random_source;

/* ---------------------------------------------------------------- randomness and time */

static uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, v] (or [v, 0]), without modulo bias. */
static int64_t random_int(uint64_t* rng, int64_t v) {
  uint64_t span = v < 0 ? 0 - (uint64_t)v : (uint64_t)v, r;
  if (span == UINT64_MAX) r = splitmix64(rng);
  else {
    uint64_t bound = span + 1, threshold = (0 - bound) % bound;
    do r = splitmix64(rng); while (r < threshold);
    r %= bound;
  }
  return v < 0 ? (int64_t)(0 - r) : (int64_t)r;
}

/* Uniform in [0, v): 53 random bits scaled. */
static double random_float(uint64_t* rng, double v) {
  return (double)(splitmix64(rng) >> 11) * 0x1.0p-53 * v;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleeps only when `t_us` is still ahead: clock_nanosleep() costs a system call and the
** timer slack (20-80 us) even for a time already past, which would cap interval 0. */
static void sleep_until(int64_t t_us) {
  struct timespec ts;
  if (t_us <= now_us()) return;
  ts.tv_sec = (time_t)(t_us / 1000000);
  ts.tv_nsec = (long)(t_us % 1000000) * 1000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* ---------------------------------------------------------------- config */

static void random_free(random_source* r) {
  int64_t c;
  if (!r) return;
  for (c = 0; c < r->ncols; c++) {
    free(r->cols[c].name);
    free(r->cols[c].s);
  }
  free(r->cols);
  free(r);
}

/* Read integer setting `key` into *out, keeping *out when the key is absent or null. Accepts
** a JSON integer or a string of one. Returns 0, or -1 with the error set. */
static int config_int(plutino_context* ctx, const plutino_json* doc, const char* key, int64_t* out) {
  int32_t t = plutino_json_find(doc, 0, key);
  size_t n;
  const char* raw = plutino_json_raw(doc, t, &n);
  if (t < 0 || plutino_json_type(doc, t) == PLUTINO_JSON_NULL || plutino_json_int64(doc, t, out) == 0) return 0;
  if (plutino_json_type(doc, t) == PLUTINO_JSON_STRING && n > 0 && n < 24) {
    char buf[24], *end;
    plutino_json_string(doc, t, buf, sizeof buf);
    errno = 0;
    *out = strtoll(buf, &end, 10);
    if (*end == 0 && errno == 0) return 0;
  }
  {
    const char* q = plutino_json_type(doc, t) == PLUTINO_JSON_STRING ? "\"" : "";
    plutino_set_error(ctx, "random: %s must be an integer, got %s%.*s%s (%s); set %s in the stream's "
                      "properties or random.yaml", key, q, (int)(n > 40 ? 40 : n), raw, q,
                      plutino_json_type_name(plutino_json_type(doc, t)), key);
  }
  return -1;
}

/* Turn the pattern object into columns. Returns PLUTINO_OK or a failure with the error set. */
static plutino_status config_pattern(plutino_context* ctx, const plutino_json* doc, random_source* r) {
  int32_t pat = plutino_json_find(doc, 0, "pattern");
  plutino_json_iter it = plutino_json_members(doc, pat);
  int64_t c;
  if (pat < 0)
    return plutino_set_error(ctx, "random: pattern is missing; set pattern to an object such as "
                             "{\"count\": 50} in the stream's properties or random.yaml"), PLUTINO_INVALID;
  if (plutino_json_type(doc, pat) != PLUTINO_JSON_OBJECT)
    return plutino_set_error(ctx, "random: pattern must be an object of column names to sample values, got %s; "
                             "set pattern to an object such as {\"count\": 50}",
                             plutino_json_type_name(plutino_json_type(doc, pat))), PLUTINO_INVALID;
  if (doc->tokens[pat].size == 0)
    return plutino_set_error(ctx, "random: pattern is empty; give it at least one column, "
                             "e.g. {\"count\": 50}"), PLUTINO_INVALID;
  r->cols = (random_column*)calloc((size_t)doc->tokens[pat].size, sizeof *r->cols);
  if (!r->cols) return plutino_set_error(ctx, "random: out of memory"), PLUTINO_NOMEM;
  while (plutino_json_next(doc, &it)) {
    random_column* col = &r->cols[r->ncols];
    int32_t type = plutino_json_type(doc, it.value);
    if (!(col->name = plutino_json_strdup(doc, it.key))) return plutino_set_error(ctx, "random: out of memory"), PLUTINO_NOMEM;
    r->ncols++;
    for (c = 0; c < r->ncols - 1; c++)
      if (strcmp(r->cols[c].name, col->name) == 0)
        return plutino_set_error(ctx, "random: pattern has column '%s' twice; give each column one value",
                                 col->name), PLUTINO_INVALID;
    if (type == PLUTINO_JSON_NUMBER && plutino_json_is_integer(doc, it.value)) {
      if (plutino_json_int64(doc, it.value, &col->i) != 0)
        return plutino_set_error(ctx, "random: pattern.%s does not fit in a 64-bit integer; write it as a "
                                 "float (with a '.') or use a smaller bound", col->name), PLUTINO_INVALID;
      strcpy(col->format, "l");
    } else if (type == PLUTINO_JSON_NUMBER) {
      plutino_json_number(doc, it.value, &col->f);
      strcpy(col->format, "g");
    } else if (type == PLUTINO_JSON_BOOL) {
      strcpy(col->format, "b");
    } else if (type == PLUTINO_JSON_STRING) {
      if (!(col->s = plutino_json_strdup(doc, it.value))) return plutino_set_error(ctx, "random: out of memory"), PLUTINO_NOMEM;
      col->slen = strlen(col->s);
      strcpy(col->format, "u");
    } else {
      return plutino_set_error(ctx, "random: pattern.%s is %s; pattern values must be numbers, strings or "
                               "booleans (they give each column its type)", col->name,
                               plutino_json_type_name(type)), PLUTINO_INVALID;
    }
  }
  return PLUTINO_OK;
}

static plutino_status random_configure(plutino_context* ctx, const plutino_json* doc, random_source* r) {
  int64_t interval = 1000, count = -1, seed = 0;
  int has_count = plutino_json_type(doc, plutino_json_find(doc, 0, "count")) > PLUTINO_JSON_NULL;
  int has_seed = plutino_json_type(doc, plutino_json_find(doc, 0, "seed")) > PLUTINO_JSON_NULL;
  if (plutino_json_type(doc, 0) != PLUTINO_JSON_OBJECT)
    return plutino_set_error(ctx, "random: config must be a JSON object, got %s",
                             plutino_json_type_name(plutino_json_type(doc, 0))), PLUTINO_INVALID;
  if (config_int(ctx, doc, "interval", &interval) || config_int(ctx, doc, "batch_size", &r->batch_size) ||
      config_int(ctx, doc, "count", &count) || config_int(ctx, doc, "seed", &seed))
    return PLUTINO_INVALID;
  if (interval < 0 || interval > INT64_MAX / 1000)
    return plutino_set_error(ctx, "random: interval must be >= 0 ms, got %lld; set interval in the stream's "
                             "properties or random.yaml", (long long)interval), PLUTINO_INVALID;
  if (r->batch_size < 1)
    return plutino_set_error(ctx, "random: batch_size must be >= 1 row, got %lld; set batch_size in the "
                             "stream's properties or random.yaml", (long long)r->batch_size), PLUTINO_INVALID;
  if (has_count && count < 0)
    return plutino_set_error(ctx, "random: count must be >= 0 rows (leave it out for an endless stream), got "
                             "%lld; set count in the stream's properties or random.yaml",
                             (long long)count), PLUTINO_INVALID;
  r->interval_us = interval * 1000;
  r->remaining = has_count ? count : -1;
  if (has_seed) r->rng = (uint64_t)seed;
  else r->rng = (uint64_t)now_us() ^ ((uint64_t)(ctx ? ctx->instance_id : 0) << 32) ^ (uint64_t)(uintptr_t)r;
  return config_pattern(ctx, doc, r);
}

/* ---------------------------------------------------------------- the source */

static plutino_status random_create(plutino_context* ctx, const char* config_json, void** out_instance) {
  plutino_json doc;
  plutino_status st;
  random_source* r;
  *out_instance = NULL;
  if (plutino_json_parse(&doc, config_json, config_json ? strlen(config_json) : 0, NULL, 0) != 0) {
    plutino_set_error(ctx, "random: the config is not valid JSON (%s)", doc.error);
    plutino_json_free(&doc);
    return PLUTINO_INVALID;
  }
  r = (random_source*)calloc(1, sizeof *r);
  if (!r) {
    plutino_json_free(&doc);
    return plutino_set_error(ctx, "random: out of memory"), PLUTINO_NOMEM;
  }
  r->batch_size = 1;
  st = random_configure(ctx, &doc, r);
  plutino_json_free(&doc);
  if (st != PLUTINO_OK) {
    random_free(r);
    return st;
  }
  *out_instance = r;
  return PLUTINO_OK;
}

static plutino_status random_schema(plutino_context* ctx, void* instance, struct ArrowSchema* out) {
  random_source* r = (random_source*)instance;
  int64_t c;
  if (plutino_schema_struct(out, "", r->ncols) != PLUTINO_OK)
    return plutino_set_error(ctx, "random: out of memory"), PLUTINO_NOMEM;
  for (c = 0; c < r->ncols; c++)
    if (plutino_schema_make(out->children[c], r->cols[c].format, r->cols[c].name) != PLUTINO_OK) {
      out->release(out);
      return plutino_set_error(ctx, "random: out of memory"), PLUTINO_NOMEM;
    }
  return PLUTINO_OK;
}

/* Fill a batch of n rows: one column at a time, so each loop is a plain fill. */
static plutino_status random_batch(plutino_context* ctx, random_source* r, int64_t n, struct ArrowArray* out) {
  int64_t c, i;
  if (plutino_batch_struct(ctx, out, n, r->ncols) != PLUTINO_OK) return PLUTINO_NOMEM;
  for (c = 0; c < r->ncols; c++) {
    const random_column* col = &r->cols[c];
    struct ArrowArray* a = out->children[c];
    if (col->format[0] == 'l') {
      int64_t* v = plutino_result_i64(ctx, a, n);
      if (!v) goto nomem;
      for (i = 0; i < n; i++) v[i] = random_int(&r->rng, col->i);
    } else if (col->format[0] == 'g') {
      double* v = plutino_result_f64(ctx, a, n);
      if (!v) goto nomem;
      for (i = 0; i < n; i++) v[i] = random_float(&r->rng, col->f);
    } else if (col->format[0] == 'b') {
      uint8_t* bits = plutino_result_bool(ctx, a, n);
      if (!bits) goto nomem;
      for (i = 0; i < (n + 7) / 8; i++) bits[i] = (uint8_t)splitmix64(&r->rng);
    } else {
      plutino_strings sb;
      if (plutino_strings_init(ctx, &sb, n, (size_t)n * col->slen) != PLUTINO_OK) goto nomem;
      for (i = 0; i < n; i++)
        if (plutino_strings_append(&sb, col->s, col->slen) != PLUTINO_OK) {
          plutino_strings_abort(&sb);
          goto nomem;
        }
      if (plutino_strings_finish(&sb, a) != PLUTINO_OK) goto nomem;
    }
  }
  return PLUTINO_OK;
nomem:
  out->release(out);
  return plutino_set_error(ctx, "random: out of memory building a batch of %lld rows", (long long)n), PLUTINO_NOMEM;
}

static plutino_status random_next(plutino_context* ctx, void* instance, int64_t timeout_us,
                                  struct ArrowArray* out) {
  random_source* r = (random_source*)instance;
  int64_t now = now_us(), n = r->batch_size;
  plutino_status st;
  if (r->remaining == 0) return PLUTINO_EOF;
  if (!r->started) {
    r->started = 1;
    r->due_us = now; /* the first batch comes at once */
  }
  if (timeout_us < 0) timeout_us = 0;
  if (r->due_us - now > timeout_us) {
    sleep_until(now + timeout_us);
    return PLUTINO_AGAIN;
  }
  sleep_until(r->due_us);
  if (r->remaining > 0 && r->remaining < n) n = r->remaining;
  if ((st = random_batch(ctx, r, n, out)) != PLUTINO_OK) return st;
  if (r->remaining > 0) r->remaining -= n;
  /* Like a ticker that keeps one pending tick: a late consumer gets the next batch at once,
  ** then the interval resumes, rather than a burst of every missed batch. */
  r->due_us += r->interval_us;
  now = now_us();
  if (r->due_us < now) r->due_us = now;
  return PLUTINO_OK;
}

static void random_close(plutino_context* ctx, void* instance) {
  (void)ctx;
  random_free((random_source*)instance);
}

static const plutino_source_api random_source_api = {
    sizeof(plutino_source_api),
    random_create,
    random_schema,
    NULL, /* open: nothing to connect to */
    random_next,
    NULL, /* status: always connected */
    random_close,
};

PLUTINO_DECLARE_SOURCE("random", PLUTINO_PLUGIN_VERSION, &random_source_api)
