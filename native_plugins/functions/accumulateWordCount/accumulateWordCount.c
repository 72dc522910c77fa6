/*
** accumulateWordCount.c -- the function library "accumulateWordCount": an aggregate function.
**
**   accumulateWordCount(text, sep)   per group: the number of words in all the group's texts,
**                                    each text split by the string sep (int64)
**
** Empty words are not counted ("a  b" split by ' ' is 2 words) and rows whose text is null
** are skipped, so a group of only null texts counts 0. sep is usually a constant (' '); a
** column works too, read row by row. From eKuiper's example function plugins. Use it from SQL:
**
**   SELECT accumulateWordCount(line, ' ') AS words FROM docs GROUP BY TUMBLINGWINDOW(ss, 10)
**   SELECT device, accumulateWordCount(log, ',') FROM s GROUP BY device, COUNTWINDOW(100)
**
** An aggregate gets a whole window at once (plutino.h): the rows of every group, with a group
** id per row (NULL when the window is one group), and returns one value per group. So the work
** is one pass over the rows adding into a counter per group.
*/
#include "plutino/plutino_helpers.h"

static int is_text(const char* fmt) { return strcmp(fmt, "u") == 0 || strcmp(fmt, "U") == 0; }

/* Row r of a utf8 ("u") or large utf8 ("U") array. */
static const char* text_at(const struct ArrowArray* a, const char* fmt, int64_t r, size_t* len) {
  if (fmt[0] == 'u') {
    int32_t n;
    const char* s = plutino_str(a, r, &n);
    *len = (size_t)n;
    return s;
  } else {
    int64_t n;
    const char* s = plutino_large_str(a, r, &n);
    *len = (size_t)n;
    return s;
  }
}

/* The number of non-empty pieces of s[0..n) between occurrences of sep[0..m), m >= 1. */
static int64_t count_words(const char* s, size_t n, const char* sep, size_t m) {
  int64_t words = 0;
  size_t start = 0, i = 0;
  while (i + m <= n) {
    if (s[i] == sep[0] && memcmp(s + i, sep, m) == 0) {
      words += i > start;
      i += m;
      start = i;
    } else {
      i++;
    }
  }
  return words + (n > start);
}

static plutino_status wc_validate(plutino_context* ctx, int32_t nargs, const struct ArrowSchema* const* types,
                                  struct ArrowSchema* out_type) {
  if (nargs != 2)
    return plutino_set_error(ctx, "accumulateWordCount takes 2 arguments (text, sep), got %d", (int)nargs),
           PLUTINO_INVALID;
  if (!is_text(types[0]->format))
    return plutino_set_error(ctx, "accumulateWordCount: text must be a string, got Arrow type '%s'; pass a "
                             "string column, e.g. accumulateWordCount(line, ' ')", types[0]->format),
           PLUTINO_INVALID;
  if (!is_text(types[1]->format))
    return plutino_set_error(ctx, "accumulateWordCount: sep must be a string, got Arrow type '%s'; pass the "
                             "separator as a string, e.g. accumulateWordCount(line, ' ')", types[1]->format),
           PLUTINO_INVALID;
  return plutino_schema_make(out_type, "l", "");
}

static plutino_status wc_aggregate(plutino_context* ctx, void* state, int32_t nargs,
                                   const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                   int64_t length, const int32_t* group_ids, int64_t ngroups,
                                   struct ArrowArray* out, struct ArrowSchema* out_type) {
  const struct ArrowArray *text = args[0], *sep = args[1];
  const char *tfmt = types[0]->format, *sfmt = types[1]->format;
  int64_t* counts;
  int64_t i;
  (void)state;
  if (nargs != 2 || !is_text(tfmt) || !is_text(sfmt))
    return plutino_set_error(ctx, "accumulateWordCount: takes (string, string), got %d arguments", (int)nargs),
           PLUTINO_UNSUPPORTED;
  if (!(counts = plutino_result_i64(ctx, out, ngroups))) return PLUTINO_NOMEM;
  memset(counts, 0, (size_t)ngroups * sizeof *counts);
  for (i = 0; i < length; i++) {
    int64_t tr = plutino_arg_row(text, i), sr = plutino_arg_row(sep, i);
    int64_t g = group_ids ? group_ids[i] : 0;
    size_t tn, sn;
    const char *t, *s;
    if (!plutino_is_valid(text, tr) || !plutino_is_valid(sep, sr)) continue;
    t = text_at(text, tfmt, tr, &tn);
    s = text_at(sep, sfmt, sr, &sn);
    if (sn == 0) {
      out->release(out);
      return plutino_set_error(ctx, "accumulateWordCount: the separator is an empty string; pass a non-empty "
                               "one, e.g. accumulateWordCount(line, ' ')"), PLUTINO_INVALID;
    }
    if (g < 0 || g >= ngroups) {
      out->release(out);
      return plutino_set_error(ctx, "accumulateWordCount: row %lld has group id %lld outside [0, %lld) "
                               "(a host bug: please report it)", (long long)i, (long long)g,
                               (long long)ngroups), PLUTINO_ERROR;
    }
    counts[g] += count_words(t, tn, s, sn);
  }
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) {
    out->release(out);
    return plutino_set_error(ctx, "out of memory"), PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

static const plutino_function accumulate_word_count_fn = {
    sizeof(plutino_function), PLUTINO_FN_AGGREGATE, "accumulateWordCount", 2, 2, wc_validate,
    NULL, NULL, NULL, wc_aggregate,
};

static const plutino_function* const word_count_functions[] = {&accumulate_word_count_fn};

PLUTINO_DECLARE_FUNCTIONS("accumulateWordCount", PLUTINO_PLUGIN_VERSION, word_count_functions)
