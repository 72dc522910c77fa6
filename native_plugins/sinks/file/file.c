/*
** file.c -- the sink "file": appends each row a rule emits to a file, as one JSON object per line.
**
** A row {a: 1, b: "x", c: null} becomes the line  {"a":1,"b":"x","c":null}  (keys are the
** column names, in column order). Column types written: int64, float64 (NaN and infinities
** as null), utf8 / large utf8, bool, and the null type; another type fails the write with a
** message naming the column and its Arrow format.
**
** Config (file.yaml's `default:`, overlaid by the action's properties):
**
**   path          required: the file to append to. It is created if missing, but its directory
**                 is not: a missing directory is reported when the rule starts. A relative path
**                 is relative to the host's working directory.
**   fields        optional list of column names: write only these, in this order (empty or
**                 left out: every column)
**   flush_every   optional row count: hold rows in memory and write them once this many have
**                 gathered (and on flush / close). Default: write every batch as it comes.
**
** Use it as a rule action:
**
**   {"id": "r1", "sql": "SELECT count, name FROM demo",
**    "actions": [{"file": {"path": "/tmp/r1.jsonl", "fields": ["name", "count"]}}]}
**
** Each write() appends whole lines with one write(2) on a file opened with O_APPEND, so
** several rules may append to the same file without tearing each other's lines.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <unistd.h>

#include "plutino/plutino_helpers.h"
#include "plutino/plutino_json.h"

typedef struct file_sink {
  char* path;
  char** fields;      /* NULL: every column */
  int64_t nfields;
  int64_t flush_every;  /* 0: write each batch */
  int fd;             /* -1 until open() */
  char* buf;          /* rows not yet written */
  size_t len, cap;
  int64_t pending_rows;
  int64_t* columns;   /* per write(): the batch column of each output field */
} file_sink;

/* ---------------------------------------------------------------- the line buffer */

static int buf_reserve(file_sink* f, size_t more) {
  size_t cap = f->cap ? f->cap : 4096;
  char* p;
  if (f->len + more <= f->cap) return 0;
  while (cap < f->len + more) cap *= 2;
  if (!(p = (char*)realloc(f->buf, cap))) return -1;
  f->buf = p;
  f->cap = cap;
  return 0;
}

/* The callers reserve room first: every append below fits. */
static void put(file_sink* f, const char* s, size_t n) {
  memcpy(f->buf + f->len, s, n);
  f->len += n;
}

/* Room a JSON string of n source bytes can need: each byte may become \u00XX, plus quotes. */
#define JSON_STRING_MAX(n) ((n) * 6 + 2)

static void put_json_string(file_sink* f, const char* s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i;
  char* o = f->buf + f->len;
  *o++ = '"';
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') { *o++ = (char)c; continue; }
    *o++ = '\\';
    switch (c) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\n': *o++ = 'n'; break;
      case '\r': *o++ = 'r'; break;
      case '\t': *o++ = 't'; break;
      case '\b': *o++ = 'b'; break;
      case '\f': *o++ = 'f'; break;
      default: *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = hex[c >> 4], *o++ = hex[c & 15];
    }
  }
  *o++ = '"';
  f->len = (size_t)(o - f->buf);
}

/* The shortest of %.15g / %.16g / %.17g that reads back as the same double, with ".0" added to
** integral values so a reader keeps them as floats. */
static void put_double(file_sink* f, double v) {
  char tmp[40];
  int n, prec;
  if (!isfinite(v)) { put(f, "null", 4); return; }
  for (prec = 15; prec <= 17; prec++) {
    n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (strtod(tmp, NULL) == v) break;
  }
  put(f, tmp, (size_t)n);
  if (!strpbrk(tmp, ".eE")) put(f, ".0", 2);
}

/* Write the buffered lines out: PLUTINO_OK, or PLUTINO_IO with the error set (rows stay). */
static plutino_status file_drain(plutino_context* ctx, file_sink* f) {
  size_t done = 0;
  while (done < f->len) {
    ssize_t w = write(f->fd, f->buf + done, f->len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      memmove(f->buf, f->buf + done, f->len - done);
      f->len -= done;
      return plutino_set_error(ctx, "file: cannot write to %s: %s; check the disk and the file's permissions",
                               f->path, strerror(errno)), PLUTINO_IO;
    }
    done += (size_t)w;
  }
  f->len = 0;
  f->pending_rows = 0;
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- config */

static void file_free(file_sink* f) {
  int64_t i;
  if (!f) return;
  for (i = 0; i < f->nfields; i++) free(f->fields[i]);
  free(f->fields);
  free(f->columns);
  free(f->buf);
  free(f->path);
  free(f);
}

static plutino_status file_configure(plutino_context* ctx, const plutino_json* doc, file_sink* f) {
  int32_t path = plutino_json_find(doc, 0, "path"), fields = plutino_json_find(doc, 0, "fields");
  int32_t every = plutino_json_find(doc, 0, "flush_every");
  if (plutino_json_type(doc, 0) != PLUTINO_JSON_OBJECT)
    return plutino_set_error(ctx, "file: config must be a JSON object, got %s",
                             plutino_json_type_name(plutino_json_type(doc, 0))), PLUTINO_INVALID;
  if (plutino_json_type(doc, path) != PLUTINO_JSON_STRING || doc->tokens[path].start == doc->tokens[path].end)
    return plutino_set_error(ctx, "file: path is required (got %s); set path to the file to append to in the "
                             "action's properties or file.yaml",
                             path < 0 ? "nothing" : plutino_json_type(doc, path) == PLUTINO_JSON_STRING
                                                        ? "an empty string"
                                                        : plutino_json_type_name(plutino_json_type(doc, path))),
           PLUTINO_INVALID;
  if (!(f->path = plutino_json_strdup(doc, path))) return plutino_set_error(ctx, "file: out of memory"), PLUTINO_NOMEM;

  if (plutino_json_type(doc, fields) == PLUTINO_JSON_ARRAY && doc->tokens[fields].size > 0) {
    plutino_json_iter it = plutino_json_members(doc, fields);
    f->fields = (char**)calloc((size_t)doc->tokens[fields].size + 1, sizeof(char*));
    f->columns = (int64_t*)calloc((size_t)doc->tokens[fields].size + 1, sizeof(int64_t));
    if (!f->fields || !f->columns) return plutino_set_error(ctx, "file: out of memory"), PLUTINO_NOMEM;
    while (plutino_json_next(doc, &it)) {
      if (plutino_json_type(doc, it.value) != PLUTINO_JSON_STRING)
        return plutino_set_error(ctx, "file: fields must be a list of column names, but item %lld is %s; "
                                 "write fields as [\"a\", \"b\"]", (long long)f->nfields,
                                 plutino_json_type_name(plutino_json_type(doc, it.value))), PLUTINO_INVALID;
      if (!(f->fields[f->nfields++] = plutino_json_strdup(doc, it.value)))
        return plutino_set_error(ctx, "file: out of memory"), PLUTINO_NOMEM;
    }
  } else if (plutino_json_type(doc, fields) > PLUTINO_JSON_NULL && plutino_json_type(doc, fields) != PLUTINO_JSON_ARRAY) {
    return plutino_set_error(ctx, "file: fields must be a list of column names, got %s; write fields as "
                             "[\"a\", \"b\"] or leave it out to write every column",
                             plutino_json_type_name(plutino_json_type(doc, fields))), PLUTINO_INVALID;
  }

  if (plutino_json_type(doc, every) > PLUTINO_JSON_NULL &&
      (plutino_json_int64(doc, every, &f->flush_every) != 0 || f->flush_every < 1)) {
    size_t n;
    const char* raw = plutino_json_raw(doc, every, &n);
    return plutino_set_error(ctx, "file: flush_every must be a row count >= 1, got %.*s; set it in the action's "
                             "properties or leave it out to write every batch at once",
                             (int)(n > 40 ? 40 : n), raw), PLUTINO_INVALID;
  }
  return PLUTINO_OK;
}

/* ---------------------------------------------------------------- the sink */

static plutino_status file_create(plutino_context* ctx, const char* config_json, void** out_instance) {
  plutino_json doc;
  plutino_status st;
  file_sink* f;
  *out_instance = NULL;
  if (plutino_json_parse(&doc, config_json, config_json ? strlen(config_json) : 0, NULL, 0) != 0) {
    plutino_set_error(ctx, "file: the config is not valid JSON (%s)", doc.error);
    plutino_json_free(&doc);
    return PLUTINO_INVALID;
  }
  if (!(f = (file_sink*)calloc(1, sizeof *f))) {
    plutino_json_free(&doc);
    return plutino_set_error(ctx, "file: out of memory"), PLUTINO_NOMEM;
  }
  f->fd = -1;
  st = file_configure(ctx, &doc, f);
  plutino_json_free(&doc);
  if (st != PLUTINO_OK) {
    file_free(f);
    return st;
  }
  *out_instance = f;
  return PLUTINO_OK;
}

static plutino_status file_open(plutino_context* ctx, void* instance) {
  file_sink* f = (file_sink*)instance;
  const char* fix;
  if (f->fd >= 0) return PLUTINO_OK;
  f->fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (f->fd >= 0) return PLUTINO_OK;
  switch (errno) {
    case ENOENT: fix = "create the directory or change path"; break;
    case EACCES: case EPERM: case EROFS: fix = "grant write permission or change path"; break;
    case EISDIR: fix = "path names a directory; name a file in it"; break;
    default: fix = "check path";
  }
  return plutino_set_error(ctx, "file: cannot open %s for appending: %s; %s", f->path, strerror(errno), fix),
         PLUTINO_IO;
}

static int is_writable_format(const char* fmt) {
  return strcmp(fmt, "l") == 0 || strcmp(fmt, "g") == 0 || strcmp(fmt, "u") == 0 || strcmp(fmt, "U") == 0 ||
         strcmp(fmt, "b") == 0 || strcmp(fmt, "n") == 0;
}

/* Check the batch's columns and pick those to write (f->columns); nothing is written yet. */
static plutino_status file_plan(plutino_context* ctx, file_sink* f, const struct ArrowSchema* schema,
                                int64_t* ncols) {
  int64_t i, c;
  if (!f->fields) {
    int64_t* cols = (int64_t*)realloc(f->columns, (size_t)(schema->n_children + 1) * sizeof(int64_t));
    if (!cols) return plutino_set_error(ctx, "file: out of memory"), PLUTINO_NOMEM;
    f->columns = cols;
    for (c = 0; c < schema->n_children; c++) f->columns[c] = c;
    *ncols = schema->n_children;
  } else {
    for (i = 0; i < f->nfields; i++) {
      for (c = 0; c < schema->n_children; c++)
        if (schema->children[c]->name && strcmp(schema->children[c]->name, f->fields[i]) == 0) break;
      if (c == schema->n_children)
        return plutino_set_error(ctx, "file: field '%s' in fields is not a column of the rule's output; "
                                 "fix fields in the action's properties or add the column to the rule's SELECT",
                                 f->fields[i]), PLUTINO_INVALID;
      f->columns[i] = c;
    }
    *ncols = f->nfields;
  }
  for (i = 0; i < *ncols; i++) {
    const struct ArrowSchema* col = schema->children[f->columns[i]];
    if (col->dictionary || !is_writable_format(col->format))
      return plutino_set_error(ctx, "file: column '%s' has Arrow type '%s'%s, which the file sink cannot write; "
                               "it writes int64 (l), float64 (g), utf8 (u, U), bool (b) and null (n): "
                               "cast the column in the rule's SELECT", col->name ? col->name : "",
                               col->format, col->dictionary ? " (dictionary-encoded)" : ""),
             PLUTINO_UNSUPPORTED;
  }
  return PLUTINO_OK;
}

/* The bytes row r of `a` needs at most (the key is added by the caller). */
static size_t value_room(const struct ArrowArray* a, const char* fmt, int64_t r) {
  if (fmt[0] == 'u') {
    int32_t n;
    plutino_str(a, r, &n);
    return JSON_STRING_MAX((size_t)n);
  }
  if (fmt[0] == 'U') {
    int64_t n;
    plutino_large_str(a, r, &n);
    return JSON_STRING_MAX((size_t)n);
  }
  return 32;
}

static void put_value(file_sink* f, const struct ArrowArray* a, const char* fmt, int64_t r) {
  char tmp[24];
  if (fmt[0] == 'n' || !plutino_is_valid(a, r)) {
    put(f, "null", 4);
  } else if (fmt[0] == 'l') {
    put(f, tmp, (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)plutino_i64(a)[r]));
  } else if (fmt[0] == 'g') {
    put_double(f, plutino_f64(a)[r]);
  } else if (fmt[0] == 'b') {
    if (plutino_bool(a, r)) put(f, "true", 4);
    else put(f, "false", 5);
  } else if (fmt[0] == 'u') {
    int32_t n;
    const char* s = plutino_str(a, r, &n);
    put_json_string(f, s, (size_t)n);
  } else {
    int64_t n;
    const char* s = plutino_large_str(a, r, &n);
    put_json_string(f, s, (size_t)n);
  }
}

static plutino_status file_write(plutino_context* ctx, void* instance, const struct ArrowSchema* schema,
                                 const struct ArrowArray* batch) {
  file_sink* f = (file_sink*)instance;
  int64_t ncols = 0, i, k, rows_before = f->pending_rows;
  size_t len_before = f->len, batch_bytes;
  plutino_status st;
  if (f->fd < 0 && (st = file_open(ctx, f)) != PLUTINO_OK) return st;
  if ((st = file_plan(ctx, f, schema, &ncols)) != PLUTINO_OK) return st;
  for (i = 0; i < batch->length; i++) {
    int64_t r = batch->offset + i; /* a column's row i, before the column's own offset */
    size_t room = 3;
    for (k = 0; k < ncols; k++) {
      const struct ArrowSchema* s = schema->children[f->columns[k]];
      room += JSON_STRING_MAX(strlen(s->name ? s->name : "")) + 2 +
              value_room(batch->children[f->columns[k]], s->format, r);
    }
    if (buf_reserve(f, room) != 0) return plutino_set_error(ctx, "file: out of memory"), PLUTINO_NOMEM;
    put(f, "{", 1);
    for (k = 0; k < ncols; k++) {
      const struct ArrowSchema* s = schema->children[f->columns[k]];
      const struct ArrowArray* a = batch->children[f->columns[k]];
      if (k) put(f, ",", 1);
      put_json_string(f, s->name ? s->name : "", strlen(s->name ? s->name : ""));
      put(f, ":", 1);
      /* A null row of the batch itself writes its columns as null. */
      if (plutino_is_valid(batch, i)) put_value(f, a, s->format, r);
      else put(f, "null", 4);
    }
    put(f, "}\n", 2);
    f->pending_rows++;
  }
  batch_bytes = f->len - len_before;
  if (f->flush_every == 0 || f->pending_rows >= f->flush_every) {
    if ((st = file_drain(ctx, f)) != PLUTINO_OK) {
      /* The host will resend this batch (PLUTINO_IO): keep only the rows accepted before it. */
      f->len = f->len > batch_bytes ? f->len - batch_bytes : 0;
      f->pending_rows = f->len ? rows_before : 0;
    }
    return st;
  }
  return PLUTINO_OK;
}

static plutino_status file_flush(plutino_context* ctx, void* instance) {
  file_sink* f = (file_sink*)instance;
  if (f->len == 0) return PLUTINO_OK;
  if (f->fd < 0) {
    plutino_status st = file_open(ctx, f);
    if (st != PLUTINO_OK) return st;
  }
  return file_drain(ctx, f);
}

static int32_t file_status(plutino_context* ctx, void* instance) {
  (void)ctx;
  return ((file_sink*)instance)->fd >= 0 ? PLUTINO_CONN_CONNECTED : PLUTINO_CONN_DISCONNECTED;
}

static void file_close(plutino_context* ctx, void* instance) {
  file_sink* f = (file_sink*)instance;
  if (f->len > 0 && file_flush(ctx, f) != PLUTINO_OK)
    plutino_log(ctx, PLUTINO_LOG_ERROR, "file: %lld rows not written to %s at close: %s",
                (long long)f->pending_rows, f->path, ctx && ctx->error ? ctx->error : "");
  if (f->fd >= 0) close(f->fd);
  file_free(f);
}

static const plutino_sink_api file_sink_api = {
    sizeof(plutino_sink_api),
    file_create,
    file_open,
    file_write,
    file_flush,
    file_status,
    file_close,
};

PLUTINO_DECLARE_SINK("file", PLUTINO_PLUGIN_VERSION, &file_sink_api)
