/*
** plutino_json.h -- a small read-only JSON reader, for a plugin's config.
**
** Nothing here is part of the ABI: these are static inline functions compiled into the plugin
** (C99 or later, C++; no other dependency than the C library). docs/plugin-helpers.md has the
** full list with signatures.
**
** WHY. A source's or sink's create(ctx, config_json, &instance) gets its config as the text
** of one JSON object (plutino.h): the plugin's yaml `default:` section, overlaid by the
** stream's CONF_KEY section and the stream's own properties (CREATE STREAM ... WITH), or by a
** rule action's properties for a sink. The host checks those properties against the ones the
** plugin's metadata <name>.json declares and passes them spelled as declared ("interval", not
** "INTERVAL"), typed as declared (an "int" property arrives as a JSON number even when the
** SQL wrote INTERVAL="5"). So a plugin looks its keys up exactly as its .json names them.
**
** WHAT IT PARSES. JSON as RFC 8259 defines it, strictly: one value with optional whitespace
** around it; no comments, trailing commas, single quotes, NaN or Infinity. Strings are checked
** for escapes and control characters and decoded on demand (\" \\ \/ \b \f \n \r \t and
** \uXXXX, surrogate pairs included; a lone surrogate becomes U+FFFD) to UTF-8; the bytes of
** the text are not otherwise checked as UTF-8. Numbers are kept as text and read as double
** (strtod) or as int64 (exact for integer literals; 5.0 and 1e3 accepted; 1.5 or values
** outside int64 refused). It never writes JSON.
**
** LIMITS. The text is at most 2 GiB (offsets are int32); containers nest at most
** PLUTINO_JSON_MAX_DEPTH (64) deep; the number of values is bounded by the token array given
** to plutino_json_parse (or by memory when the reader allocates it). A key that repeats in an
** object: lookups find the last one, as most JSON readers do. Key comparison is exact
** (byte-wise after decoding, case-sensitive).
**
** OWNERSHIP. The parsed document (plutino_json) points into the text: the text must outlive
** it. config_json is valid only during create(), so read what you need there, copy strings
** you keep (plutino_json_strdup: free() the copy; or plutino_json_string into a buffer of
** yours), and call plutino_json_free(&doc) before returning -- on every path, a failed parse
** included (it may have allocated tokens). Tokens are the caller's array when one is given to
** plutino_json_parse, else malloc'd by the reader and freed by plutino_json_free. A parsed
** document is never modified by the readers, so threads may share it.
**
** THE API.
**   parse once        plutino_json_parse(&doc, text, len, tokens, capacity)  -> 0 or -1
**                     (tokens NULL: the reader mallocs them), plutino_json_free(&doc)
**   look up by path   plutino_json_get_double / _int64 / _bool / _string(&doc, obj, "a.b", &v...)
**                     plutino_json_get_type(&doc, obj, path), plutino_json_has(&doc, obj, path)
**   tokens            plutino_json_find(&doc, obj, "key"), plutino_json_path(&doc, obj, "a.b.0")
**                     plutino_json_type(&doc, tok), plutino_json_type_name(type), plutino_json_is_integer
**                     plutino_json_number / _int64 / _bool / _string / _strdup / _raw(&doc, tok, ...)
**   iterate           plutino_json_iter it = plutino_json_members(&doc, obj);
**                     while (plutino_json_next(&doc, &it)) { it.key, it.value ... }
**
** The parsed document is a flat array of tokens in document order: a container is followed by
** its contents, an object's members as key, value, key, value. Token 0 is the root. A token is
** an index (int32_t); -1 means "none", and every reader accepts -1 (a missing value).
**
** Paths are keys joined by '.', and a segment that is all digits indexes an array:
** "pattern.count", "fields.0". A key that itself holds a '.' is reached with plutino_json_find.
**
** The path getters return PLUTINO_JSON_OK, or PLUTINO_JSON_MISSING (no such key: keep your
** default), or PLUTINO_JSON_WRONG_TYPE (present, but not a number / an integer in range / a bool
** / a string; a JSON null is present and of the wrong type: test plutino_json_get_type(...) ==
** PLUTINO_JSON_NULL to treat null as "not set"), or PLUTINO_JSON_TOO_LONG (a string that does
** not fit the buffer; the buffer then holds a truncated, NUL-terminated copy).
**
** HOW A PLUGIN READS ITS CONFIG (a source with "interval" (int, ms) and "topic" (string);
** needs plutino_helpers.h for plutino_set_error):
**
**     static plutino_status my_create(plutino_context* ctx, const char* config_json, void** out) {
**       plutino_json doc;
**       int64_t interval = 1000;           // the default when the key is missing
**       char topic[256] = "";
**       int rc;
**       *out = NULL;
**       if (plutino_json_parse(&doc, config_json, strlen(config_json), NULL, 0) != 0) {
**         plutino_set_error(ctx, "my_source: config is not valid JSON: %s", doc.error);
**         plutino_json_free(&doc);
**         return PLUTINO_INVALID;
**       }
**       if (plutino_json_get_int64(&doc, 0, "interval", &interval) == PLUTINO_JSON_WRONG_TYPE ||
**           interval < 0) {
**         plutino_set_error(ctx, "my_source: interval must be an integer >= 0 (ms)");
**         plutino_json_free(&doc);
**         return PLUTINO_INVALID;
**       }
**       rc = plutino_json_get_string(&doc, 0, "topic", topic, sizeof topic);
**       plutino_json_free(&doc);           // topic and interval are copies: the doc may go
**       if (rc != PLUTINO_JSON_OK)
**         return plutino_set_error(ctx, "my_source: \"topic\" must be a string of at most 255 bytes"),
**                PLUTINO_INVALID;
**       // ... allocate the instance from interval and topic into *out ...
**       return PLUTINO_OK;
**     }
**
** Malformed JSON gives doc.error, e.g. "byte 17: expected ':' after an object key, found '}'",
** and doc.error_offset (the byte offset).
*/
#ifndef PLUTINO_JSON_H
#define PLUTINO_JSON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Token types (plutino_json_type). NONE is what plutino_json_get_type returns for a missing path. */
#define PLUTINO_JSON_NONE 0
#define PLUTINO_JSON_NULL 1
#define PLUTINO_JSON_BOOL 2
#define PLUTINO_JSON_NUMBER 3
#define PLUTINO_JSON_STRING 4
#define PLUTINO_JSON_ARRAY 5
#define PLUTINO_JSON_OBJECT 6

/* Results of the path getters. */
#define PLUTINO_JSON_OK 0
#define PLUTINO_JSON_MISSING 1
#define PLUTINO_JSON_WRONG_TYPE 2
#define PLUTINO_JSON_TOO_LONG 3

#define PLUTINO_JSON_MAX_DEPTH 64

/* One value. Strings: [start, end) is the text between the quotes, still escaped. Others:
** the value's whole text. size: members of an object, elements of an array. */
typedef struct plutino_json_token {
  int32_t type;     /* PLUTINO_JSON_* */
  int32_t start, end;
  int32_t size;
  int32_t skip;     /* index of the first token after this value and its contents */
} plutino_json_token;

typedef struct plutino_json {
  const char* text;
  size_t len;
  plutino_json_token* tokens;
  int32_t count, capacity;
  int owns_tokens;
  size_t error_offset;  /* where parsing failed */
  char error[160];      /* "" after a successful parse */
} plutino_json;

/* An iterator over an object's members (key and value tokens) or an array's elements (key -1). */
typedef struct plutino_json_iter {
  int32_t key, value;
  int32_t next_, left_;
} plutino_json_iter;

/* ---------------------------------------------------------------- parsing */

static inline const char* plutino_json_type_name(int32_t type) {
  static const char* const names[] = {"missing", "null", "a boolean", "a number", "a string",
                                      "an array", "an object"};
  return type >= 0 && type <= 6 ? names[type] : "unknown";
}

static inline int plutino_json__fail(plutino_json* d, size_t at, const char* what) {
  char found[16];
  if (at >= d->len) snprintf(found, sizeof found, "the end");
  else if ((unsigned char)d->text[at] < 0x20) snprintf(found, sizeof found, "byte 0x%02x", (unsigned char)d->text[at]);
  else snprintf(found, sizeof found, "'%c'", d->text[at]);
  d->error_offset = at;
  snprintf(d->error, sizeof d->error, "byte %zu: %s, found %s", at, what, found);
  return -1;
}

static inline size_t plutino_json__ws(const plutino_json* d, size_t p) {
  while (p < d->len && (d->text[p] == ' ' || d->text[p] == '\t' || d->text[p] == '\n' || d->text[p] == '\r')) p++;
  return p;
}

static inline int32_t plutino_json__push(plutino_json* d, int32_t type, size_t start) {
  if (d->count == d->capacity) {
    plutino_json_token* t;
    int32_t cap = d->capacity ? d->capacity * 2 : 32;
    if (!d->owns_tokens || d->capacity > INT32_MAX / 2) {
      d->error_offset = start;
      snprintf(d->error, sizeof d->error, "byte %zu: more than %d JSON values; pass a larger token array (or NULL)",
               start, (int)d->capacity);
      return -1;
    }
    t = (plutino_json_token*)realloc(d->tokens, (size_t)cap * sizeof *t);
    if (!t) {
      d->error_offset = start;
      snprintf(d->error, sizeof d->error, "out of memory parsing JSON");
      return -1;
    }
    d->tokens = t;
    d->capacity = cap;
  }
  d->tokens[d->count].type = type;
  d->tokens[d->count].start = (int32_t)start;
  d->tokens[d->count].end = (int32_t)start;
  d->tokens[d->count].size = 0;
  d->tokens[d->count].skip = d->count + 1;
  return d->count++;
}

static inline int plutino_json__hex(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A string starting at its opening quote; on success *p is past the closing quote. */
static inline int plutino_json__string(plutino_json* d, size_t* p) {
  size_t i = *p + 1;
  int32_t t = plutino_json__push(d, PLUTINO_JSON_STRING, i);
  if (t < 0) return -1;
  for (;;) {
    unsigned char c;
    if (i >= d->len) return plutino_json__fail(d, i, "unterminated string");
    c = (unsigned char)d->text[i];
    if (c == '"') break;
    if (c < 0x20) return plutino_json__fail(d, i, "control character in a string (escape it)");
    if (c == '\\') {
      if (i + 1 >= d->len) return plutino_json__fail(d, i + 1, "unterminated string");
      c = (unsigned char)d->text[i + 1];
      if (c == 'u') {
        int k;
        for (k = 2; k < 6; k++)
          if (i + k >= d->len || plutino_json__hex(d->text[i + k]) < 0)
            return plutino_json__fail(d, i + k, "expected 4 hex digits after \\u");
        i += 6;
        continue;
      }
      if (!strchr("\"\\/bfnrt", c) || c == 0) return plutino_json__fail(d, i + 1, "invalid escape in a string");
      i += 2;
      continue;
    }
    i++;
  }
  d->tokens[t].end = (int32_t)i;
  *p = i + 1;
  return 0;
}

static inline int plutino_json__value(plutino_json* d, size_t* p, int depth);

static inline int plutino_json__container(plutino_json* d, size_t* p, int depth, int is_obj) {
  char close = is_obj ? '}' : ']';
  size_t i = *p;
  int32_t t = plutino_json__push(d, is_obj ? PLUTINO_JSON_OBJECT : PLUTINO_JSON_ARRAY, i);
  if (t < 0) return -1;
  if (depth >= PLUTINO_JSON_MAX_DEPTH) return plutino_json__fail(d, i, "nesting too deep");
  i = plutino_json__ws(d, i + 1);
  if (i < d->len && d->text[i] == close) i++;
  else
    for (;;) {
      if (is_obj) {
        if (i >= d->len || d->text[i] != '"') return plutino_json__fail(d, i, "expected a string key in an object");
        if (plutino_json__string(d, &i) != 0) return -1;
        i = plutino_json__ws(d, i);
        if (i >= d->len || d->text[i] != ':') return plutino_json__fail(d, i, "expected ':' after an object key");
        i = plutino_json__ws(d, i + 1);
      }
      if (plutino_json__value(d, &i, depth + 1) != 0) return -1;
      d->tokens[t].size++;
      i = plutino_json__ws(d, i);
      if (i < d->len && d->text[i] == ',') { i = plutino_json__ws(d, i + 1); continue; }
      if (i < d->len && d->text[i] == close) { i++; break; }
      return plutino_json__fail(d, i, is_obj ? "expected ',' or '}' after an object member"
                                             : "expected ',' or ']' after an array element");
    }
  d->tokens[t].end = (int32_t)i;
  d->tokens[t].skip = d->count;
  *p = i;
  return 0;
}

static inline int plutino_json__value(plutino_json* d, size_t* p, int depth) {
  size_t i = *p, s = i;
  char c = i < d->len ? d->text[i] : 0;
  int32_t t;
  if (c == '{' || c == '[') return plutino_json__container(d, p, depth, c == '{');
  if (c == '"') return plutino_json__string(d, p);
  if (i < d->len && (c == '-' || (c >= '0' && c <= '9'))) {
    if (c == '-') i++;
    if (i < d->len && d->text[i] == '0') i++;
    else if (i < d->len && d->text[i] >= '1' && d->text[i] <= '9')
      while (i < d->len && d->text[i] >= '0' && d->text[i] <= '9') i++;
    else return plutino_json__fail(d, i, "expected a digit in a number");
    if (i < d->len && d->text[i] == '.') {
      if (++i >= d->len || d->text[i] < '0' || d->text[i] > '9') return plutino_json__fail(d, i, "expected a digit after '.'");
      while (i < d->len && d->text[i] >= '0' && d->text[i] <= '9') i++;
    }
    if (i < d->len && (d->text[i] == 'e' || d->text[i] == 'E')) {
      if (++i < d->len && (d->text[i] == '+' || d->text[i] == '-')) i++;
      if (i >= d->len || d->text[i] < '0' || d->text[i] > '9') return plutino_json__fail(d, i, "expected a digit in an exponent");
      while (i < d->len && d->text[i] >= '0' && d->text[i] <= '9') i++;
    }
    t = plutino_json__push(d, PLUTINO_JSON_NUMBER, s);
  } else if (d->len - i >= 4 && memcmp(d->text + i, "true", 4) == 0) {
    i += 4, t = plutino_json__push(d, PLUTINO_JSON_BOOL, s);
  } else if (d->len - i >= 5 && memcmp(d->text + i, "false", 5) == 0) {
    i += 5, t = plutino_json__push(d, PLUTINO_JSON_BOOL, s);
  } else if (d->len - i >= 4 && memcmp(d->text + i, "null", 4) == 0) {
    i += 4, t = plutino_json__push(d, PLUTINO_JSON_NULL, s);
  } else {
    return plutino_json__fail(d, i, "expected a JSON value");
  }
  if (t < 0) return -1;
  d->tokens[t].end = (int32_t)i;
  *p = i;
  return 0;
}

/* Parse `len` bytes of `text` into `d`. Tokens go into `tokens` (room for `capacity`) or, when
** tokens is NULL, into an array the reader mallocs and grows. Returns 0, or -1 with d->error
** and d->error_offset set. Call plutino_json_free(d) in both cases. */
static inline int plutino_json_parse(plutino_json* d, const char* text, size_t len,
                                     plutino_json_token* tokens, int32_t capacity) {
  size_t p;
  memset(d, 0, sizeof *d);
  d->text = text ? text : "";
  d->len = text ? len : 0;
  d->tokens = tokens;
  d->capacity = tokens ? capacity : 0;
  d->owns_tokens = tokens == NULL;
  if (d->len > (size_t)INT32_MAX) return plutino_json__fail(d, 0, "JSON text longer than 2 GiB");
  p = plutino_json__ws(d, 0);
  if (p >= d->len) return plutino_json__fail(d, p, "expected a JSON value");
  if (plutino_json__value(d, &p, 0) != 0) return -1;
  p = plutino_json__ws(d, p);
  if (p < d->len) return plutino_json__fail(d, p, "unexpected text after the JSON value");
  return 0;
}

static inline void plutino_json_free(plutino_json* d) {
  if (d->owns_tokens) free(d->tokens);
  d->tokens = NULL;
  d->count = d->capacity = 0;
}

/* ---------------------------------------------------------------- tokens */

static inline int32_t plutino_json_type(const plutino_json* d, int32_t tok) {
  return tok >= 0 && tok < d->count ? d->tokens[tok].type : PLUTINO_JSON_NONE;
}

/* The token's text as it appears in the document (strings without their quotes, undecoded). */
static inline const char* plutino_json_raw(const plutino_json* d, int32_t tok, size_t* len) {
  if (tok < 0 || tok >= d->count) { *len = 0; return ""; }
  *len = (size_t)(d->tokens[tok].end - d->tokens[tok].start);
  return d->text + d->tokens[tok].start;
}

static inline size_t plutino_json__utf8(char* o, uint32_t cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Decode string token `tok` into buf (NUL-terminated, truncated to cap - 1 bytes). Returns the
** full decoded length, as snprintf does (so >= cap means truncated), or -1 if not a string. */
static inline int64_t plutino_json_string(const plutino_json* d, int32_t tok, char* buf, size_t cap) {
  const char *s, *e;
  size_t n = 0;
  if (plutino_json_type(d, tok) != PLUTINO_JSON_STRING) return -1;
  s = d->text + d->tokens[tok].start;
  e = d->text + d->tokens[tok].end;
  while (s < e) {
    char u[4];
    size_t k = 1, j;
    if (*s != '\\') u[0] = *s++;
    else if (s[1] != 'u') {
      const char* m = strchr("\"\"\\\\//b\bf\fn\nr\rt\t", s[1]);
      u[0] = m[1];
      s += 2;
    } else {
      uint32_t cp = 0, lo = 0;
      for (j = 2; j < 6; j++) cp = cp * 16 + (uint32_t)plutino_json__hex(s[j]);
      s += 6;
      if (cp >= 0xd800 && cp < 0xdc00 && e - s >= 6 && s[0] == '\\' && s[1] == 'u') {
        for (j = 2; j < 6; j++) lo = lo * 16 + (uint32_t)plutino_json__hex(s[j]);
        if (lo >= 0xdc00 && lo < 0xe000) { cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00); s += 6; }
      }
      if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd; /* a lone surrogate */
      k = plutino_json__utf8(u, cp);
    }
    for (j = 0; j < k; j++, n++)
      if (n + 1 < cap) buf[n] = u[j];
  }
  if (cap) buf[n < cap ? n : cap - 1] = 0;
  return (int64_t)n;
}

/* The decoded string in a new malloc'd buffer (free() it), or NULL if not a string / no memory. */
static inline char* plutino_json_strdup(const plutino_json* d, int32_t tok) {
  int64_t n = plutino_json_string(d, tok, NULL, 0);
  char* s = n >= 0 ? (char*)malloc((size_t)n + 1) : NULL;
  if (s) plutino_json_string(d, tok, s, (size_t)n + 1);
  return s;
}

/* A number token as a double. Returns 0, or -1 if not a number. */
static inline int plutino_json_number(const plutino_json* d, int32_t tok, double* out) {
  char buf[64];
  size_t n;
  const char* raw = plutino_json_raw(d, tok, &n);
  if (plutino_json_type(d, tok) != PLUTINO_JSON_NUMBER) return -1;
  if (n >= sizeof buf) { /* a very long number: strtod needs a NUL-terminated copy */
    char* big = (char*)malloc(n + 1);
    if (!big) return -1;
    memcpy(big, raw, n), big[n] = 0;
    *out = strtod(big, NULL);
    free(big);
    return 0;
  }
  memcpy(buf, raw, n), buf[n] = 0;
  *out = strtod(buf, NULL);
  return 0;
}

/* Is the number token written without fraction or exponent (an integer literal)? */
static inline int plutino_json_is_integer(const plutino_json* d, int32_t tok) {
  size_t n, i;
  const char* raw = plutino_json_raw(d, tok, &n);
  if (plutino_json_type(d, tok) != PLUTINO_JSON_NUMBER) return 0;
  for (i = 0; i < n; i++)
    if (raw[i] == '.' || raw[i] == 'e' || raw[i] == 'E') return 0;
  return 1;
}

/* A number token as an int64: exact for integer literals; 5.0 or 1e3 are accepted, 1.5 and
** values outside int64 are not. Returns 0, or -1. */
static inline int plutino_json_int64(const plutino_json* d, int32_t tok, int64_t* out) {
  size_t n, i;
  const char* raw = plutino_json_raw(d, tok, &n);
  if (plutino_json_is_integer(d, tok)) {
    int neg = raw[0] == '-';
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (i = (size_t)neg; i < n; i++) {
      uint64_t digit = (uint64_t)(raw[i] - '0');
      if (v > (limit - digit) / 10) return -1;
      v = v * 10 + digit;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
  } else {
    double x;
    if (plutino_json_number(d, tok, &x) != 0) return -1;
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0) || x != (double)(int64_t)x) return -1;
    *out = (int64_t)x;
    return 0;
  }
}

/* A boolean token: 1 for true, 0 for false, -1 if not a boolean. */
static inline int plutino_json_bool(const plutino_json* d, int32_t tok) {
  if (plutino_json_type(d, tok) != PLUTINO_JSON_BOOL) return -1;
  return d->text[d->tokens[tok].start] == 't';
}

/* ---------------------------------------------------------------- lookup and iteration */

static inline plutino_json_iter plutino_json_members(const plutino_json* d, int32_t container) {
  plutino_json_iter it;
  int32_t type = plutino_json_type(d, container);
  it.key = it.value = -1;
  it.next_ = container + 1;
  it.left_ = (type == PLUTINO_JSON_OBJECT || type == PLUTINO_JSON_ARRAY) ? d->tokens[container].size : 0;
  if (type == PLUTINO_JSON_ARRAY) it.left_ = -it.left_; /* negative: elements have no key */
  return it;
}

/* Advance to the next member (it->key, it->value) or element (it->key = -1). 0 at the end. */
static inline int plutino_json_next(const plutino_json* d, plutino_json_iter* it) {
  if (it->left_ == 0) return 0;
  if (it->left_ > 0) {
    it->key = it->next_;
    it->value = it->key + 1;
    it->left_--;
  } else {
    it->key = -1;
    it->value = it->next_;
    it->left_++;
  }
  it->next_ = d->tokens[it->value].skip;
  return 1;
}

/* Does string token `tok` decode to exactly the `n` bytes of `key`? */
static inline int plutino_json__key_is(const plutino_json* d, int32_t tok, const char* key, size_t n) {
  const char* raw = d->text + d->tokens[tok].start;
  size_t rn = (size_t)(d->tokens[tok].end - d->tokens[tok].start);
  char small[128];
  char* buf;
  int64_t got;
  int same;
  if (!memchr(raw, '\\', rn)) return rn == n && memcmp(raw, key, n) == 0;
  buf = n < sizeof small ? small : (char*)malloc(n + 1);
  if (!buf) return 0;
  got = plutino_json_string(d, tok, buf, n + 1);
  same = got == (int64_t)n && memcmp(buf, key, n) == 0;
  if (buf != small) free(buf);
  return same;
}

/* The value of member `key` (n bytes) of object `obj`; the last one if the key repeats. */
static inline int32_t plutino_json__find_n(const plutino_json* d, int32_t obj, const char* key, size_t n) {
  plutino_json_iter it = plutino_json_members(d, obj);
  int32_t found = -1;
  if (plutino_json_type(d, obj) != PLUTINO_JSON_OBJECT) return -1;
  while (plutino_json_next(d, &it))
    if (plutino_json__key_is(d, it.key, key, n)) found = it.value;
  return found;
}

/* The value of member `key` of object `obj` (the last one if repeated), or -1. */
static inline int32_t plutino_json_find(const plutino_json* d, int32_t obj, const char* key) {
  return plutino_json__find_n(d, obj, key, strlen(key));
}

/* Element `seg` (n decimal digits) of array `arr`, or -1. */
static inline int32_t plutino_json__element(const plutino_json* d, int32_t arr, const char* seg, size_t n) {
  plutino_json_iter it = plutino_json_members(d, arr);
  size_t i, index = 0;
  if (plutino_json_type(d, arr) != PLUTINO_JSON_ARRAY || n == 0 || n > 9) return -1;
  for (i = 0; i < n; i++) {
    if (seg[i] < '0' || seg[i] > '9') return -1;
    index = index * 10 + (size_t)(seg[i] - '0');
  }
  while (plutino_json_next(d, &it))
    if (index-- == 0) return it.value;
  return -1;
}

/* The value at dotted `path` below token `from` ("a.b", "list.0"), or -1. */
static inline int32_t plutino_json_path(const plutino_json* d, int32_t from, const char* path) {
  int32_t tok = from;
  for (;;) {
    const char* dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    tok = plutino_json_type(d, tok) == PLUTINO_JSON_ARRAY ? plutino_json__element(d, tok, path, n)
                                                          : plutino_json__find_n(d, tok, path, n);
    if (tok < 0 || !dot) return tok;
    path = dot + 1;
  }
}

static inline int32_t plutino_json_get_type(const plutino_json* d, int32_t obj, const char* path) {
  return plutino_json_type(d, plutino_json_path(d, obj, path));
}

static inline int plutino_json_has(const plutino_json* d, int32_t obj, const char* path) {
  return plutino_json_path(d, obj, path) >= 0;
}

static inline int plutino_json_get_double(const plutino_json* d, int32_t obj, const char* path, double* out) {
  int32_t t = plutino_json_path(d, obj, path);
  if (t < 0) return PLUTINO_JSON_MISSING;
  return plutino_json_number(d, t, out) == 0 ? PLUTINO_JSON_OK : PLUTINO_JSON_WRONG_TYPE;
}

static inline int plutino_json_get_int64(const plutino_json* d, int32_t obj, const char* path, int64_t* out) {
  int32_t t = plutino_json_path(d, obj, path);
  if (t < 0) return PLUTINO_JSON_MISSING;
  return plutino_json_int64(d, t, out) == 0 ? PLUTINO_JSON_OK : PLUTINO_JSON_WRONG_TYPE;
}

static inline int plutino_json_get_bool(const plutino_json* d, int32_t obj, const char* path, int* out) {
  int32_t t = plutino_json_path(d, obj, path);
  int b = plutino_json_bool(d, t);
  if (t < 0) return PLUTINO_JSON_MISSING;
  if (b < 0) return PLUTINO_JSON_WRONG_TYPE;
  *out = b;
  return PLUTINO_JSON_OK;
}

static inline int plutino_json_get_string(const plutino_json* d, int32_t obj, const char* path, char* buf, size_t cap) {
  int32_t t = plutino_json_path(d, obj, path);
  int64_t n;
  if (t < 0) return PLUTINO_JSON_MISSING;
  if (plutino_json_type(d, t) != PLUTINO_JSON_STRING) return PLUTINO_JSON_WRONG_TYPE;
  n = plutino_json_string(d, t, buf, cap);
  return n < (int64_t)cap ? PLUTINO_JSON_OK : PLUTINO_JSON_TOO_LONG;
}

#ifdef __cplusplus
}
#endif

#endif /* PLUTINO_JSON_H */
