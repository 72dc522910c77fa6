/*
** plutino.hpp -- an optional, header-only C++17 layer over plutino.h.
**
** Nothing here is part of the ABI: a C++ plugin still fills the C structs of plutino.h and
** declares itself with PLUTINO_DECLARE_*; these helpers only make the callbacks shorter and
** safe. Everything is inline and compiles to the same C ABI.
**
**   errors       plutino::Error (an exception carrying a status), plutino::guard (the try/catch
**                that keeps exceptions from crossing the C boundary), plutino::set_error
**   arguments    plutino::Arg (one argument: validity, length-1 constants, int64 / float64 /
**                bool / string in both "u" and "U" layouts), plutino::group_of
**   results      plutino::Int64Builder, Float64Builder, Utf8Builder (own their buffers until
**                finish() moves them into the host's ArrowArray with a release callback),
**                plutino::set_type (a result type for validate())
**
** A scalar function, whole:
**
**     static plutino_status upper_call(plutino_context* ctx, void*, int32_t nargs,
**                                      const ArrowArray* const* args,
**                                      const ArrowSchema* const* types, int64_t n,
**                                      ArrowArray* out, ArrowSchema* out_type) {
**       return plutino::guard(ctx, "upper", [&] {
**         plutino::Arg s(args, types, 0);
**         s.expect(plutino::Type::String);
**         plutino::Utf8Builder res(n);
**         for (int64_t i = 0; i < n; i++) {
**           if (!s.valid(i)) { res.append_null(); continue; }
**           std::string v(s.str(i));
**           for (char& c : v) c = (char)std::toupper((unsigned char)c);
**           res.append(v);
**         }
**         return res.finish(out, out_type);
**       });
**     }
**
** Exceptions: a C++ exception must never leave a callback (the host is C; unwinding through
** it is undefined behaviour). Wrap every callback body in plutino::guard: plutino::Error
** becomes its own status and message, std::bad_alloc becomes PLUTINO_NOMEM, any other
** std::exception PLUTINO_ERROR with its what(). A builder that has not finished frees its
** memory as the exception unwinds, and *out stays untouched, as plutino.h requires.
*/
#ifndef PLUTINO_HPP
#define PLUTINO_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "plutino.hpp needs C++17 (plutino_add_plugin sets it; otherwise compile with -std=c++17)"
#endif

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "plutino/plutino.h"

namespace plutino {

// ------------------------------------------------------------------------------ errors

// An error for the user, with the status the callback returns (PLUTINO_INVALID for bad input).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, plutino_status status = PLUTINO_ERROR)
      : std::runtime_error(message), status_(status) {}
  plutino_status status() const noexcept { return status_; }

 private:
  plutino_status status_;
};

// Write `message` into the instance's error slot (cut to its capacity); returns `status`.
inline plutino_status set_error(plutino_context* ctx, std::string_view message,
                                plutino_status status = PLUTINO_ERROR) noexcept {
  if (ctx && ctx->error && ctx->error_capacity > 0) {
    size_t n = message.size() < ctx->error_capacity - 1 ? message.size() : ctx->error_capacity - 1;
    std::memcpy(ctx->error, message.data(), n);
    ctx->error[n] = '\0';
  }
  return status;
}

namespace detail {
inline plutino_status fail(plutino_context* ctx, const char* where, const char* what,
                           plutino_status status) noexcept {
  if (!where || !*where) return set_error(ctx, what, status);
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%s: %s", where, what);
  return set_error(ctx, buf, status);
}
}  // namespace detail

// Run `body` (returning plutino_status) and turn any exception into a status and a message,
// prefixed with `where` (e.g. the function's name) when given. Use it as the whole body of
// every callback: nothing thrown inside reaches the host.
template <class Body>
plutino_status guard(plutino_context* ctx, const char* where, Body&& body) noexcept {
  try {
    return body();
  } catch (const Error& e) {
    return detail::fail(ctx, where, e.what(), e.status());
  } catch (const std::bad_alloc&) {
    return detail::fail(ctx, where, "out of memory", PLUTINO_NOMEM);
  } catch (const std::exception& e) {
    return detail::fail(ctx, where, e.what(), PLUTINO_ERROR);
  } catch (...) {
    return detail::fail(ctx, where, "unknown C++ exception", PLUTINO_ERROR);
  }
}

template <class Body>
plutino_status guard(plutino_context* ctx, Body&& body) noexcept {
  return guard(ctx, nullptr, std::forward<Body>(body));
}

// ------------------------------------------------------------------------------ types

enum class Type { Int64, Float64, Bool, String, Other };

// The Arrow formats the host passes: "l", "g", "b", "u" / "U" (strings arrive in either).
inline Type type_of(const ArrowSchema* s) noexcept {
  std::string_view f = (s && s->format) ? s->format : "";
  if (f == "l") return Type::Int64;
  if (f == "g") return Type::Float64;
  if (f == "b") return Type::Bool;
  if (f == "u" || f == "U") return Type::String;
  return Type::Other;
}

inline const char* type_name(Type t) noexcept {
  switch (t) {
    case Type::Int64: return "int64";
    case Type::Float64: return "float64";
    case Type::Bool: return "bool";
    case Type::String: return "string";
    default: return "another type";
  }
}

namespace detail {
struct SchemaData {
  std::string format;
};
inline void release_schema(ArrowSchema* s) noexcept {
  delete static_cast<SchemaData*>(s->private_data);
  s->release = nullptr;
}
}  // namespace detail

// Write a result type of Arrow `format` ("l", "g", "u", "b") into *out (MOVED to the host),
// for validate(). Throws std::bad_alloc.
inline void set_type(ArrowSchema* out, const char* format) {
  auto* d = new detail::SchemaData{format};
  *out = ArrowSchema{};
  out->format = d->format.c_str();
  out->name = "";
  out->flags = ARROW_FLAG_NULLABLE;
  out->private_data = d;
  out->release = detail::release_schema;
}

// ------------------------------------------------------------------------------ arguments

// One BORROWED argument of call()/aggregate(). Row i is the result row: an argument that is a
// constant in the SQL arrives with one row and reads row 0 for every i.
class Arg {
 public:
  Arg(const ArrowArray* const* args, const ArrowSchema* const* types, int index)
      : a_(args[index]), t_(types[index]), index_(index), type_(type_of(types[index])) {}

  Type type() const noexcept { return type_; }
  const char* format() const noexcept { return t_->format; }
  bool is_constant() const noexcept { return a_->length == 1; }
  int64_t row(int64_t i) const noexcept { return a_->length == 1 ? 0 : i; }

  // Throw Error(PLUTINO_INVALID) naming the argument and both types (guard adds the function).
  void expect(Type want) const {
    if (type_ == want) return;
    throw Error("argument " + std::to_string(index_ + 1) + " must be " +
                    (want == Type::Int64 ? "an " : "a ") + type_name(want) + ", got Arrow type '" +
                    format() + "'; cast it in the SQL",
                PLUTINO_INVALID);
  }

  bool valid(int64_t i) const noexcept {
    if (a_->null_count == 0 || a_->n_buffers == 0 || !a_->buffers[0]) return true;
    int64_t j = row(i) + a_->offset;
    return (static_cast<const uint8_t*>(a_->buffers[0])[j >> 3] >> (j & 7)) & 1;
  }
  // Values (check type() or expect() first; a null row holds an unspecified value).
  int64_t i64(int64_t i) const noexcept {
    return static_cast<const int64_t*>(a_->buffers[1])[row(i) + a_->offset];
  }
  double f64(int64_t i) const noexcept {
    return static_cast<const double*>(a_->buffers[1])[row(i) + a_->offset];
  }
  bool boolean(int64_t i) const noexcept {
    int64_t j = row(i) + a_->offset;
    return (static_cast<const uint8_t*>(a_->buffers[1])[j >> 3] >> (j & 7)) & 1;
  }
  // A view of the string's bytes, valid for the duration of the call; "u" or "U" alike.
  std::string_view str(int64_t i) const noexcept {
    int64_t j = row(i) + a_->offset;
    const char* data = static_cast<const char*>(a_->buffers[2]);
    if (t_->format[0] == 'U') {
      const int64_t* o = static_cast<const int64_t*>(a_->buffers[1]);
      return {data + o[j], static_cast<size_t>(o[j + 1] - o[j])};
    }
    const int32_t* o = static_cast<const int32_t*>(a_->buffers[1]);
    return {data + o[j], static_cast<size_t>(o[j + 1] - o[j])};
  }

 private:
  const ArrowArray* a_;
  const ArrowSchema* t_;
  int index_;
  Type type_;
};

// The group of row i in aggregate(): group_ids is NULL when the window has a single group.
inline int64_t group_of(const int32_t* group_ids, int64_t i) noexcept {
  return group_ids ? group_ids[i] : 0;
}

// ------------------------------------------------------------------------------ results

namespace detail {
// What a finished result owns, deleted by its release callback (on any thread, maybe after
// the instance closed, never after the plugin is unloaded). The vectors move in: no copy.
struct ArrayData {
  virtual ~ArrayData() = default;
  std::vector<uint8_t> validity;
  const void* buffers[3] = {nullptr, nullptr, nullptr};
};
template <class T>
struct FixedData : ArrayData {
  std::vector<T> values;
};
struct StringData : ArrayData {
  std::vector<int32_t> offsets;
  std::string data;
};
inline void release_array(ArrowArray* a) noexcept {
  delete static_cast<ArrayData*>(a->private_data);
  a->release = nullptr;
}

// The validity bitmap, made on the first null (a column without nulls has none).
class Nulls {
 public:
  void set_null(int64_t row) {
    size_t byte = static_cast<size_t>(row >> 3);
    if (byte >= bits_.size()) bits_.resize(byte + 1 > hint_ ? byte + 1 : hint_, 0xff);
    bits_[byte] &= static_cast<uint8_t>(~(1u << (row & 7)));
    count_++;
  }
  void reserve(int64_t rows) { hint_ = static_cast<size_t>(rows + 7) / 8; }
  int64_t count() const noexcept { return count_; }
  // The bitmap for `rows` rows (empty when there is no null).
  std::vector<uint8_t> take(int64_t rows) {
    if (!bits_.empty()) bits_.resize(static_cast<size_t>(rows + 7) / 8, 0xff);
    return std::move(bits_);
  }

 private:
  std::vector<uint8_t> bits_;
  size_t hint_ = 0;
  int64_t count_ = 0;
};

// Hand `d` to *out and the type to *out_type (when not null). Allocates the type first, so a
// std::bad_alloc leaves both untouched and `d` to the caller.
inline plutino_status move_out(ArrayData* d, int64_t length, int64_t null_count, int n_buffers,
                               const char* format, ArrowArray* out, ArrowSchema* out_type) {
  SchemaData* s = out_type ? new SchemaData{format} : nullptr;
  d->buffers[0] = d->validity.empty() ? nullptr : d->validity.data();
  *out = ArrowArray{};
  out->length = length;
  out->null_count = null_count;
  out->n_buffers = n_buffers;
  out->buffers = d->buffers;
  out->private_data = d;
  out->release = release_array;
  if (s) {
    *out_type = ArrowSchema{};
    out_type->format = s->format.c_str();
    out_type->name = "";
    out_type->flags = ARROW_FLAG_NULLABLE;
    out_type->private_data = s;
    out_type->release = release_schema;
  }
  return PLUTINO_OK;
}
}  // namespace detail

// A column of int64_t ("l") or double ("g") built row by row; finish() moves it to the host.
// Until then the builder owns its memory, and frees it if an exception unwinds past it.
template <class T, char Format>
class FixedBuilder {
 public:
  explicit FixedBuilder(int64_t rows = 0) {
    values_.reserve(static_cast<size_t>(rows > 0 ? rows : 1));
    nulls_.reserve(rows);
  }
  void append(T v) { values_.push_back(v); }
  void append_null() {
    nulls_.set_null(size());
    values_.push_back(T{});
  }
  int64_t size() const noexcept { return static_cast<int64_t>(values_.size()); }

  // Move the column into *out and its type into *out_type (nullptr: leave the type to
  // validate()'s). Returns PLUTINO_OK; a std::bad_alloc leaves both untouched.
  plutino_status finish(ArrowArray* out, ArrowSchema* out_type) {
    static const char format[2] = {Format, '\0'};
    auto* d = new detail::FixedData<T>;
    try {
      int64_t rows = size(), nulls = nulls_.count();
      d->validity = nulls_.take(rows);
      d->values = std::move(values_);
      d->buffers[1] = d->values.data();
      return detail::move_out(d, rows, nulls, 2, format, out, out_type);
    } catch (...) {
      delete d;
      throw;
    }
  }

 private:
  std::vector<T> values_;
  detail::Nulls nulls_;
};

using Int64Builder = FixedBuilder<int64_t, 'l'>;
using Float64Builder = FixedBuilder<double, 'g'>;

// A utf8 ("u") column built row by row; finish() moves it to the host.
class Utf8Builder {
 public:
  explicit Utf8Builder(int64_t rows = 0, size_t bytes_hint = 0) {
    offsets_.reserve(static_cast<size_t>(rows > 0 ? rows : 0) + 1);
    offsets_.push_back(0);
    data_.reserve(bytes_hint);
    nulls_.reserve(rows);
  }
  void append(std::string_view s) {
    if (data_.size() + s.size() > static_cast<size_t>(INT32_MAX))
      throw Error("the string result exceeds 2 GiB, the limit of an Arrow utf8 column");
    data_.append(s.data(), s.size());
    offsets_.push_back(static_cast<int32_t>(data_.size()));
  }
  void append_null() {
    nulls_.set_null(size());
    offsets_.push_back(offsets_.back());
  }
  int64_t size() const noexcept { return static_cast<int64_t>(offsets_.size()) - 1; }

  plutino_status finish(ArrowArray* out, ArrowSchema* out_type) {
    auto* d = new detail::StringData;
    try {
      int64_t rows = size(), nulls = nulls_.count();
      d->validity = nulls_.take(rows);
      d->offsets = std::move(offsets_);
      d->data = std::move(data_);
      d->buffers[1] = d->offsets.data();
      d->buffers[2] = d->data.data();
      return detail::move_out(d, rows, nulls, 3, "u", out, out_type);
    } catch (...) {
      delete d;
      throw;
    }
  }

 private:
  std::vector<int32_t> offsets_;
  std::string data_;
  detail::Nulls nulls_;
};

}  // namespace plutino

#endif /* PLUTINO_HPP */
