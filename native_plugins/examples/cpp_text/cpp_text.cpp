// cpp_text.cpp -- the function library "cpp_text", written in C++17 with plutino.hpp.
//
//   title_case(s)          each word's first letter upper case, the rest lower (ASCII); string
//   parse_int(s [, base])  s read as an integer in `base` (2..36, default 10); int64.
//                          Bad input is an error naming the value, e.g.
//                          "parse_int: 'abc' is not an integer in base 10"
//   mean_length(s)         aggregate: the mean length in characters (UTF-8 code points) of a
//                          group's non-null strings; float64, null for a group without any
//
//   SELECT title_case(name) AS name, parse_int(code, 16) AS code FROM demo
//   SELECT k, mean_length(text) AS len FROM demo GROUP BY k, COUNTWINDOW(100)
//
// What plutino.hpp is for: std::string and std::vector inside, results built by RAII builders
// that hand their memory to the host, and exceptions (thrown here on purpose for bad input)
// stopped at the C boundary by plutino::guard and shown as the function's error message.
// Null in, null out. Strings arrive as utf8 ("u") or large utf8 ("U"); Arg::str reads both.
#include <cctype>
#include <charconv>
#include <initializer_list>
#include <string>
#include <vector>

#include "plutino/plutino.hpp"

#ifndef PLUTINO_PLUGIN_VERSION
#define PLUTINO_PLUGIN_VERSION "1.0.0"
#endif

namespace {

using plutino::Arg;
using plutino::Type;

// validate(): check the argument types once, when a rule is created, and give the result type.
plutino_status check_types(plutino_context* ctx, const char* fn, int32_t nargs, const ArrowSchema* const* types,
                           std::initializer_list<Type> want, const char* result, ArrowSchema* out_type) {
  return plutino::guard(ctx, fn, [&] {
    int32_t i = 0;
    for (Type t : want) {
      if (i < nargs && plutino::type_of(types[i]) != t)
        throw plutino::Error("argument " + std::to_string(i + 1) + " must be " +
                                 (t == Type::Int64 ? "an " : "a ") + plutino::type_name(t) +
                                 ", got Arrow type '" + types[i]->format + "'; cast it in the SQL",
                             PLUTINO_INVALID);
      i++;
    }
    plutino::set_type(out_type, result);
    return PLUTINO_OK;
  });
}

// A value for an error message: quoted, and cut when long.
std::string quoted(std::string_view s) {
  return "'" + std::string(s.substr(0, 40)) + (s.size() > 40 ? "...'" : "'");
}

// ---------------------------------------------------------------- title_case(s)

std::string title_case(std::string_view s) {
  std::string out(s);
  bool start = true;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = !std::isdigit(u) && u < 0x80;  // a word starts after a space or punctuation
    }
  }
  return out;
}

plutino_status title_case_validate(plutino_context* ctx, int32_t nargs, const ArrowSchema* const* types,
                                   ArrowSchema* out_type) {
  return check_types(ctx, "title_case", nargs, types, {Type::String}, "u", out_type);
}

plutino_status title_case_call(plutino_context* ctx, void*, int32_t, const ArrowArray* const* args,
                               const ArrowSchema* const* types, int64_t n, ArrowArray* out, ArrowSchema*) {
  return plutino::guard(ctx, "title_case", [&] {
    Arg s(args, types, 0);
    s.expect(Type::String);
    plutino::Utf8Builder result(n);
    for (int64_t i = 0; i < n; i++) {
      if (s.valid(i)) result.append(title_case(s.str(i)));
      else result.append_null();
    }
    return result.finish(out, nullptr);  // the type is validate()'s
  });
}

// ---------------------------------------------------------------- parse_int(s [, base])

// Throws plutino::Error for anything that is not a whole integer in `base`.
int64_t parse_int(std::string_view text, int64_t base) {
  if (base < 2 || base > 36)
    throw plutino::Error("base must be between 2 and 36, got " + std::to_string(base), PLUTINO_INVALID);
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.size() > 1 && s.front() == '+' && s[1] != '-') s.remove_prefix(1);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, static_cast<int>(base));
  if (ec == std::errc::result_out_of_range)
    throw plutino::Error(quoted(text) + " is out of the int64 range", PLUTINO_INVALID);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    throw plutino::Error(quoted(text) + " is not an integer in base " + std::to_string(base), PLUTINO_INVALID);
  return value;
}

plutino_status parse_int_validate(plutino_context* ctx, int32_t nargs, const ArrowSchema* const* types,
                                  ArrowSchema* out_type) {
  return check_types(ctx, "parse_int", nargs, types, {Type::String, Type::Int64}, "l", out_type);
}

plutino_status parse_int_call(plutino_context* ctx, void*, int32_t nargs, const ArrowArray* const* args,
                              const ArrowSchema* const* types, int64_t n, ArrowArray* out, ArrowSchema*) {
  return plutino::guard(ctx, "parse_int", [&] {
    Arg s(args, types, 0);
    s.expect(Type::String);
    plutino::Int64Builder result(n);
    if (nargs == 1) {
      for (int64_t i = 0; i < n; i++) {
        if (s.valid(i)) result.append(parse_int(s.str(i), 10));
        else result.append_null();
      }
    } else {
      Arg base(args, types, 1);  // usually a constant: one row, read for every i
      base.expect(Type::Int64);
      for (int64_t i = 0; i < n; i++) {
        if (s.valid(i) && base.valid(i)) result.append(parse_int(s.str(i), base.i64(i)));
        else result.append_null();
      }
    }
    return result.finish(out, nullptr);
  });
}

// ---------------------------------------------------------------- mean_length(s), an aggregate

int64_t code_points(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // skip continuation bytes
  return n;
}

plutino_status mean_length_validate(plutino_context* ctx, int32_t nargs, const ArrowSchema* const* types,
                                    ArrowSchema* out_type) {
  return check_types(ctx, "mean_length", nargs, types, {Type::String}, "g", out_type);
}

plutino_status mean_length_aggregate(plutino_context* ctx, void*, int32_t, const ArrowArray* const* args,
                                     const ArrowSchema* const* types, int64_t length, const int32_t* group_ids,
                                     int64_t ngroups, ArrowArray* out, ArrowSchema*) {
  return plutino::guard(ctx, "mean_length", [&] {
    Arg s(args, types, 0);
    s.expect(Type::String);
    std::vector<int64_t> chars(static_cast<size_t>(ngroups)), count(static_cast<size_t>(ngroups));
    for (int64_t i = 0; i < length; i++) {
      if (!s.valid(i)) continue;
      size_t g = static_cast<size_t>(plutino::group_of(group_ids, i));
      chars[g] += code_points(s.str(i));
      count[g]++;
    }
    plutino::Float64Builder result(ngroups);
    for (size_t g = 0; g < static_cast<size_t>(ngroups); g++) {
      if (count[g]) result.append(static_cast<double>(chars[g]) / static_cast<double>(count[g]));
      else result.append_null();
    }
    return result.finish(out, nullptr);
  });
}

// ---------------------------------------------------------------- the library

const plutino_function title_case_fn = {
    sizeof(plutino_function), 0, "title_case", 1, 1, title_case_validate, nullptr, nullptr, title_case_call, nullptr};
const plutino_function parse_int_fn = {
    sizeof(plutino_function), 0, "parse_int", 1, 2, parse_int_validate, nullptr, nullptr, parse_int_call, nullptr};
const plutino_function mean_length_fn = {
    sizeof(plutino_function), PLUTINO_FN_AGGREGATE, "mean_length", 1, 1, mean_length_validate, nullptr, nullptr,
    nullptr, mean_length_aggregate};

const plutino_function* const cpp_text_functions[] = {&title_case_fn, &parse_int_fn, &mean_length_fn};

}  // namespace

PLUTINO_DECLARE_FUNCTIONS("cpp_text", PLUTINO_PLUGIN_VERSION, cpp_text_functions)
