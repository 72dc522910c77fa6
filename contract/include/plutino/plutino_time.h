/*
** plutino_time.h -- timestamp helpers over plutino_helpers.h (static inline, not part of the ABI).
**
**   plutino_is_timestamp(s), plutino_timestamp_zone(s), plutino_timestamp_us(s, a, i),
**   plutino_result_timestamp_us(ctx, out, n) + PLUTINO_TIMESTAMP_US ("tsu:"), plutino_now_us(),
**   plutino_us_from_utc(...), plutino_us_to_utc(us, &utc), plutino_us_format(us, buf, cap),
**   plutino_us_parse(text, len, &us)
**
** SQL `datetime` is timestamp[us] ("tsu:", or "tsu:<zone>" with a time zone): int64
** microseconds since 1970-01-01T00:00:00Z. docs/plugin-helpers.md lists every signature.
*/
#ifndef PLUTINO_TIME_H
#define PLUTINO_TIME_H

#include <time.h>

#include "plutino/plutino_helpers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- timestamps */

/* SQL `datetime` is timestamp[us]: int64 microseconds since 1970-01-01T00:00:00Z. Declare a
** result or a column with PLUTINO_TIMESTAMP_US ("tsu:", no zone) or PLUTINO_TIMESTAMP_US_UTC. */
#define PLUTINO_TIMESTAMP_US "tsu:"
#define PLUTINO_TIMESTAMP_US_UTC "tsu:UTC"

/* Is `s` a timestamp column, of any unit (s, ms, us, ns) and any zone ("tsu:", "tsu:UTC",
** "tsm:Europe/Paris", ...)? */
static inline int plutino_is_timestamp(const struct ArrowSchema* s) {
  const char* f = s ? s->format : NULL;
  return f && f[0] == 't' && f[1] == 's' && (f[2] == 's' || f[2] == 'm' || f[2] == 'u' || f[2] == 'n') &&
         f[3] == ':';
}

/* The time zone of a timestamp column: "" when it has none (the values are still UTC-based). */
static inline const char* plutino_timestamp_zone(const struct ArrowSchema* s) {
  return plutino_is_timestamp(s) ? s->format + 4 : "";
}

static inline int64_t plutino__floor_div(int64_t a, int64_t b) {
  return a / b - (a % b != 0 && (a % b < 0) != (b < 0));
}

/* Row i of a timestamp column of type `s` (any unit) as microseconds since the epoch:
** seconds and milliseconds are multiplied (saturating at the int64 range), nanoseconds
** divided (rounding down). 0 when `s` is not a timestamp. */
static inline int64_t plutino_timestamp_us(const struct ArrowSchema* s, const struct ArrowArray* a, int64_t i) {
  int64_t v, mul;
  if (!plutino_is_timestamp(s)) return 0;
  v = plutino_i64(a)[i];
  switch (s->format[2]) {
    case 'n': return plutino__floor_div(v, 1000);
    case 'u': return v;
    case 'm': mul = 1000; break;
    default: mul = 1000000; break;
  }
  if (v > INT64_MAX / mul) return INT64_MAX;
  if (v < INT64_MIN / mul) return INT64_MIN;
  return v * mul;
}

/* Allocate a timestamp[us] result of `length` rows (as plutino_result_i64: fill it with
** microseconds since the epoch) and declare it with plutino_schema_make(out_type,
** PLUTINO_TIMESTAMP_US, name). NULL when out of memory (the error is set). */
static inline int64_t* plutino_result_timestamp_us(plutino_context* ctx, struct ArrowArray* out, int64_t length) {
  return plutino_result_i64(ctx, out, length);
}

/* The current time (the system's real-time clock) in microseconds since the epoch; 0 if the
** clock cannot be read. C11's timespec_get; compiled as C99 (no TIME_UTC), whole seconds. */
static inline int64_t plutino_now_us(void) {
#ifdef TIME_UTC
  struct timespec ts;
  if (timespec_get(&ts, TIME_UTC) != TIME_UTC) return 0;
  return (int64_t)ts.tv_sec * 1000000 + (int64_t)ts.tv_nsec / 1000;
#else
  time_t now = time(NULL);
  return now == (time_t)-1 ? 0 : (int64_t)now * 1000000;
#endif
}

/* A UTC calendar time (proleptic Gregorian; month 1-12, day 1-31). */
typedef struct plutino_utc {
  int32_t year, month, day, hour, minute, second, microsecond;
} plutino_utc;

static inline int64_t plutino__days_from_civil(int64_t y, int64_t m, int64_t d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = plutino__floor_div(y, 400);
  yoe = y - era * 400;
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Microseconds since the epoch of a UTC calendar time. Fields out of their range carry over
** (month 13 is January of the next year), as mktime does. */
static inline int64_t plutino_us_from_utc(int32_t year, int32_t month, int32_t day, int32_t hour, int32_t minute,
                                          int32_t second, int32_t microsecond) {
  int64_t y = (int64_t)year + plutino__floor_div((int64_t)month - 1, 12);
  int64_t m = (int64_t)month - 1 - plutino__floor_div((int64_t)month - 1, 12) * 12 + 1;
  int64_t days = plutino__days_from_civil(y, m, 1) + day - 1;
  return ((days * 24 + hour) * 60 + minute) * INT64_C(60000000) + (int64_t)second * 1000000 + microsecond;
}

/* The UTC calendar time of `us` microseconds since the epoch. */
static inline void plutino_us_to_utc(int64_t us, plutino_utc* out) {
  int64_t z = plutino__floor_div(us, INT64_C(86400000000));
  int64_t rem = us - z * INT64_C(86400000000);
  int64_t era, doe, yoe, doy, mp;
  z += 719468;
  era = plutino__floor_div(z, 146097);
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  out->day = (int32_t)(doy - (153 * mp + 2) / 5 + 1);
  out->month = (int32_t)(mp < 10 ? mp + 3 : mp - 9);
  out->year = (int32_t)(yoe + era * 400 + (out->month <= 2));
  out->hour = (int32_t)(rem / INT64_C(3600000000));
  out->minute = (int32_t)(rem / 60000000 % 60);
  out->second = (int32_t)(rem / 1000000 % 60);
  out->microsecond = (int32_t)(rem % 1000000);
}

/* Write `us` as RFC 3339 UTC text, "2024-05-01T12:30:00.250000Z" (27 characters for years
** 0-9999), NUL-terminated, into buf. Returns the length, or -1 when cap is too small. */
static inline int plutino_us_format(int64_t us, char* buf, size_t cap) {
  plutino_utc t;
  int n;
  plutino_us_to_utc(us, &t);
  n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", (int)t.year, (int)t.month, (int)t.day,
               (int)t.hour, (int)t.minute, (int)t.second, (int)t.microsecond);
  return n >= 0 && (size_t)n < cap ? n : -1;
}

static inline int plutino__digits(const char* p, size_t len, size_t* at, size_t n, int32_t* out) {
  size_t k;
  *out = 0;
  for (k = 0; k < n; k++, (*at)++) {
    if (*at >= len || p[*at] < '0' || p[*at] > '9') return -1;
    *out = *out * 10 + (p[*at] - '0');
  }
  return 0;
}

/* Read RFC 3339 / ISO 8601 text -- "2024-05-01", "2024-05-01T12:30:00", with an optional
** fraction of up to 9 digits and an optional zone "Z" or "+02:00" / "-0530" ('T', 't' or ' '
** between date and time; no zone means UTC) -- into microseconds since the epoch (a fraction
** beyond microseconds is cut). Returns 0, or -1 when the text is not such a time. */
static inline int plutino_us_parse(const char* text, size_t len, int64_t* out) {
  int32_t y, mo, d, h = 0, mi = 0, s = 0, frac = 0, zh = 0, zm = 0, leap;
  size_t at = 0, k;
  int sign = 0;
  static const int32_t mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (plutino__digits(text, len, &at, 4, &y) || at >= len || text[at++] != '-' ||
      plutino__digits(text, len, &at, 2, &mo) || at >= len || text[at++] != '-' ||
      plutino__digits(text, len, &at, 2, &d))
    return -1;
  if (at < len && (text[at] == 'T' || text[at] == 't' || text[at] == ' ')) {
    at++;
    if (plutino__digits(text, len, &at, 2, &h) || at >= len || text[at++] != ':' ||
        plutino__digits(text, len, &at, 2, &mi) || at >= len || text[at++] != ':' ||
        plutino__digits(text, len, &at, 2, &s))
      return -1;
    if (at < len && text[at] == '.') {
      for (at++, k = 0; at < len && text[at] >= '0' && text[at] <= '9'; at++, k++)
        if (k < 6) frac = frac * 10 + (text[at] - '0');
      if (k == 0 || k > 9) return -1;
      for (; k < 6; k++) frac *= 10;
    }
    if (at < len && (text[at] == 'Z' || text[at] == 'z')) {
      at++;
    } else if (at < len && (text[at] == '+' || text[at] == '-')) {
      sign = text[at++] == '-' ? -1 : 1;
      if (plutino__digits(text, len, &at, 2, &zh)) return -1;
      if (at < len && text[at] == ':') at++;
      if (plutino__digits(text, len, &at, 2, &zm) || zh > 23 || zm > 59) return -1;
    }
  }
  if (at != len || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 59) return -1;
  leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return -1;
  *out = plutino_us_from_utc(y, mo, d, h, mi, s, frac) - (int64_t)sign * ((int64_t)zh * 60 + zm) * 60000000;
  return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* PLUTINO_TIME_H */
