# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, overflowcheck=False, binding=False
#
# geo -- a function library written in Cython: great-circle distance and geohash.
#
#   haversine(lat1, lon1, lat2, lon2) -> float64
#       The great-circle distance in kilometres between two points given in degrees, on a
#       sphere of the mean Earth radius (6371.0088 km, IUGG). Arguments are float64 or int64
#       columns; any of them may be a constant. A null in any argument gives a null.
#           SELECT haversine(lat, lon, 48.8566, 2.3522) AS km_from_paris FROM trucks
#
#   geohash(lat, lon, precision) -> utf8
#       The geohash of a point (degrees) with `precision` characters, 1 to 12 (12 is about
#       3.7 cm x 1.9 cm). lat and lon are float64 or int64, precision int64 or int32, usually a
#       constant. A null in any argument gives a null; a precision outside 1..12 or a point
#       off the globe fails the call with a message naming the row and the value.
#           SELECT geohash(lat, lon, 7) AS cell FROM trucks
#
# Build: plutino_add_plugin(geo KIND function SOURCES geo.pyx VERSION 1.0.0) (see
# CMakeLists.txt beside this file). The contract's CMake package runs Cython on this file with
# plutino.pxd on the include path and compiles the C it produces against the Python headers.
#
# Why this works although the module is never imported
# -----------------------------------------------------
# The host opens geo.so with dlopen (through cffi) and calls plutino_plugin_v1(); it never
# imports it, so Cython's module init (PyInit_geo) never runs. Module init is what creates the
# module object, interns strings, imports cimported types and runs module-level statements;
# none of that is needed here, because:
#   * every callback is a `cdef ... noexcept nogil` function over C types only: Cython compiles
#     it to a plain C function that touches no Python object, no module state and no GIL,
#     and with the directives above (cdivision, no bounds/wraparound checks) it has no error
#     path that would raise a Python exception;
#   * the ABI tag, the function table and the descriptor are C static data with constant
#     initialisers, written in the verbatim C block below by the contract's macros. The
#     dynamic loader lays them out at dlopen time, before any code runs; the tag sits in its
#     own ELF section where the host reads it from the file before loading at all;
#   * constants live in that C block too (#define, static const). A module-level
#     `cdef double R = 6371.0088` would be assigned by module init, i.e. stay 0.0 here.
# The Python C-API symbols the generated file references (module init, unused here) resolve
# against the host's own Python at dlopen time, which is why plutino_add_plugin links
# Python::Module (headers, no libpython). PyInit_geo stays exported beside plutino_plugin_v1;
# it is harmless and never called.
#
# The callbacks are `cdef public` so that their C names are exactly the names written below
# (geo_haversine_call, ...), which the verbatim block declares and puts in the function table.

from libc.math cimport asin, cos, sin, sqrt, isnan
from libc.stdint cimport int32_t, int64_t
from libc.string cimport strcmp

from plutino cimport *

cdef extern from *:
    """
    #include "plutino/plutino.h"
    #include "plutino/plutino_helpers.h"

    #define GEO_EARTH_RADIUS_KM 6371.0088
    #define GEO_DEG_TO_RAD 0.017453292519943295
    #define GEO_MAX_PRECISION 12
    static const char geo_base32[] = "0123456789bcdefghjkmnpqrstuvwxyz";

    /* The callbacks, defined below by Cython as `cdef public` functions. */
    plutino_status geo_haversine_validate(plutino_context*, int32_t, const struct ArrowSchema* const*,
                                          struct ArrowSchema*);
    plutino_status geo_haversine_call(plutino_context*, void*, int32_t, const struct ArrowArray* const*,
                                      const struct ArrowSchema* const*, int64_t, struct ArrowArray*,
                                      struct ArrowSchema*);
    plutino_status geo_geohash_validate(plutino_context*, int32_t, const struct ArrowSchema* const*,
                                        struct ArrowSchema*);
    plutino_status geo_geohash_call(plutino_context*, void*, int32_t, const struct ArrowArray* const*,
                                    const struct ArrowSchema* const*, int64_t, struct ArrowArray*,
                                    struct ArrowSchema*);

    /* struct_size, flags, name, min_args, max_args, validate, create, destroy, call, aggregate */
    static const plutino_function geo_haversine_fn = {
        sizeof(plutino_function), 0, "haversine", 4, 4,
        geo_haversine_validate, NULL, NULL, geo_haversine_call, NULL};
    static const plutino_function geo_geohash_fn = {
        sizeof(plutino_function), 0, "geohash", 3, 3,
        geo_geohash_validate, NULL, NULL, geo_geohash_call, NULL};
    static const plutino_function* const geo_functions[] = {&geo_haversine_fn, &geo_geohash_fn};

    /* The ABI tag (section .plutino_tag), the descriptor and the entry symbol plutino_plugin_v1. */
    PLUTINO_DECLARE_FUNCTIONS("geo", PLUTINO_PLUGIN_VERSION, geo_functions)
    """
    double GEO_EARTH_RADIUS_KM
    double GEO_DEG_TO_RAD
    int GEO_MAX_PRECISION
    const char* geo_base32


# ---------------------------------------------------------------- argument checks

cdef const char* _type_name(const char* fmt) noexcept nogil:
    """A readable name for an Arrow format string, for error messages."""
    if fmt == NULL:
        return b"(no type)"
    if strcmp(fmt, b"g") == 0:
        return b"float64"
    if strcmp(fmt, b"f") == 0:
        return b"float32"
    if strcmp(fmt, b"l") == 0:
        return b"int64"
    if strcmp(fmt, b"i") == 0:
        return b"int32"
    if strcmp(fmt, b"u") == 0:
        return b"utf8"
    if strcmp(fmt, b"U") == 0:
        return b"large_utf8"
    if strcmp(fmt, b"b") == 0:
        return b"bool"
    if strcmp(fmt, b"n") == 0:
        return b"null"
    if strcmp(fmt, b"z") == 0:
        return b"binary"
    return fmt


cdef bint _is_number(const ArrowSchema* t) noexcept nogil:
    return plutino_format_is(t, b"g") or plutino_format_is(t, b"l")


cdef plutino_status _check_numbers(plutino_context* ctx, const char* fn, const char* const* names,
                                   int32_t nargs, const ArrowSchema* const* types) noexcept nogil:
    """Every argument float64 or int64, else PLUTINO_INVALID naming the first one that is not."""
    cdef int32_t k
    for k in range(nargs):
        if not _is_number(types[k]):
            plutino_set_error(ctx, b"%s(): argument %d (%s) must be float64 or int64, got %s; "
                              b"cast it, e.g. CAST(x AS FLOAT)", fn, <int>(k + 1), names[k],
                              _type_name(types[k].format if types[k] != NULL else NULL))
            return PLUTINO_INVALID
    return PLUTINO_OK


cdef plutino_status _check_lengths(plutino_context* ctx, const char* fn, int32_t nargs,
                                   const ArrowArray* const* args, int64_t length) noexcept nogil:
    """Each argument has `length` rows, or one row (a constant)."""
    cdef int32_t k
    for k in range(nargs):
        if args[k].length != length and args[k].length != 1:
            plutino_set_error(ctx, b"%s(): argument %d has %lld rows, expected %lld (or 1 for a "
                              b"constant); this is a host bug, please report it", fn, <int>(k + 1),
                              <long long>args[k].length, <long long>length)
            return PLUTINO_INVALID
    return PLUTINO_OK


cdef inline double _number(const ArrowArray* a, bint is_int, int64_t row) noexcept nogil:
    if is_int:
        return <double>plutino_i64(a)[row]
    return plutino_f64(a)[row]


# ---------------------------------------------------------------- haversine

cdef plutino_status _haversine_check(plutino_context* ctx, int32_t nargs,
                                     const ArrowSchema* const* arg_types) noexcept nogil:
    cdef const char* names[4]
    names[0] = b"lat1"
    names[1] = b"lon1"
    names[2] = b"lat2"
    names[3] = b"lon2"
    if nargs != 4:
        plutino_set_error(ctx, b"haversine(): takes 4 arguments (lat1, lon1, lat2, lon2), got %d",
                          <int>nargs)
        return PLUTINO_INVALID
    return _check_numbers(ctx, b"haversine", names, nargs, arg_types)


cdef public plutino_status geo_haversine_validate(plutino_context* ctx, int32_t nargs,
                                                  const ArrowSchema* const* arg_types,
                                                  ArrowSchema* out_type) noexcept nogil:
    if _haversine_check(ctx, nargs, arg_types) != PLUTINO_OK:
        return PLUTINO_INVALID
    if plutino_schema_make(out_type, b"g", b"") != PLUTINO_OK:
        plutino_set_error(ctx, b"haversine(): out of memory")
        return PLUTINO_NOMEM
    return PLUTINO_OK


cdef public plutino_status geo_haversine_call(plutino_context* ctx, void* state, int32_t nargs,
                                              const ArrowArray* const* args,
                                              const ArrowSchema* const* arg_types, int64_t length,
                                              ArrowArray* out, ArrowSchema* out_type) noexcept nogil:
    cdef bint is_int[4]
    cdef int64_t rows[4]
    cdef double v[4]
    cdef double* res
    cdef double lat1, lat2, dlat, dlon, h
    cdef int64_t i
    cdef int32_t k
    cdef bint valid

    # The host may call call() with types validate() never saw: check them again (cheap),
    # so a wrong type is a message, never a misread buffer.
    if _haversine_check(ctx, nargs, arg_types) != PLUTINO_OK:
        return PLUTINO_INVALID
    if _check_lengths(ctx, b"haversine", nargs, args, length) != PLUTINO_OK:
        return PLUTINO_INVALID
    for k in range(4):
        is_int[k] = plutino_format_is(arg_types[k], b"l")

    res = plutino_result_f64(ctx, out, length)
    if res == NULL:
        return PLUTINO_NOMEM
    for i in range(length):
        valid = True
        for k in range(4):
            rows[k] = plutino_arg_row(args[k], i)
            if not plutino_is_valid(args[k], rows[k]):
                valid = False
                break
            v[k] = _number(args[k], is_int[k], rows[k])
        if not valid:
            res[i] = 0.0
            if plutino_result_set_null(ctx, out, i) != PLUTINO_OK:
                out.release(out)
                return PLUTINO_NOMEM
            continue
        lat1 = v[0] * GEO_DEG_TO_RAD
        lat2 = v[2] * GEO_DEG_TO_RAD
        dlat = lat2 - lat1
        dlon = (v[3] - v[1]) * GEO_DEG_TO_RAD
        h = sin(dlat * 0.5) * sin(dlat * 0.5) + cos(lat1) * cos(lat2) * sin(dlon * 0.5) * sin(dlon * 0.5)
        if h > 1.0:  # rounding near antipodes
            h = 1.0
        res[i] = 2.0 * GEO_EARTH_RADIUS_KM * asin(sqrt(h))
    # out_type stays unset: validate() gave the type (float64), and the host uses it.
    return PLUTINO_OK


# ---------------------------------------------------------------- geohash

cdef bint _is_precision_type(const ArrowSchema* t) noexcept nogil:
    return plutino_format_is(t, b"l") or plutino_format_is(t, b"i")


cdef plutino_status _geohash_check(plutino_context* ctx, int32_t nargs,
                                   const ArrowSchema* const* arg_types) noexcept nogil:
    cdef const char* names[2]
    names[0] = b"lat"
    names[1] = b"lon"
    if nargs != 3:
        plutino_set_error(ctx, b"geohash(): takes 3 arguments (lat, lon, precision), got %d; "
                          b"e.g. geohash(lat, lon, 7)", <int>nargs)
        return PLUTINO_INVALID
    if _check_numbers(ctx, b"geohash", names, 2, arg_types) != PLUTINO_OK:
        return PLUTINO_INVALID
    if not _is_precision_type(arg_types[2]):
        plutino_set_error(ctx, b"geohash(): argument 3 (precision) must be an integer from 1 to %d "
                          b"(int64 or int32), got %s; e.g. geohash(lat, lon, 7)", GEO_MAX_PRECISION,
                          _type_name(arg_types[2].format if arg_types[2] != NULL else NULL))
        return PLUTINO_INVALID
    return PLUTINO_OK


cdef public plutino_status geo_geohash_validate(plutino_context* ctx, int32_t nargs,
                                                const ArrowSchema* const* arg_types,
                                                ArrowSchema* out_type) noexcept nogil:
    # validate() sees argument types only, not the value of a constant precision, so the
    # range 1..12 is checked by call(), row by row.
    if _geohash_check(ctx, nargs, arg_types) != PLUTINO_OK:
        return PLUTINO_INVALID
    if plutino_schema_make(out_type, b"u", b"") != PLUTINO_OK:
        plutino_set_error(ctx, b"geohash(): out of memory")
        return PLUTINO_NOMEM
    return PLUTINO_OK


cdef void _encode(double lat, double lon, int precision, char* out) noexcept nogil:
    """Write the `precision`-character geohash of (lat, lon) into out: bits alternate
    longitude, latitude, each halving its interval; every 5 bits make a base-32 character."""
    cdef double lat_lo = -90.0, lat_hi = 90.0, lon_lo = -180.0, lon_hi = 180.0, mid
    cdef bint even = True
    cdef int bit = 0, ch = 0, n = 0
    while n < precision:
        if even:
            mid = (lon_lo + lon_hi) * 0.5
            if lon >= mid:
                ch = (ch << 1) | 1
                lon_lo = mid
            else:
                ch = ch << 1
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) * 0.5
            if lat >= mid:
                ch = (ch << 1) | 1
                lat_lo = mid
            else:
                ch = ch << 1
                lat_hi = mid
        even = not even
        bit += 1
        if bit == 5:
            out[n] = geo_base32[ch]
            n += 1
            bit = 0
            ch = 0


cdef public plutino_status geo_geohash_call(plutino_context* ctx, void* state, int32_t nargs,
                                            const ArrowArray* const* args,
                                            const ArrowSchema* const* arg_types, int64_t length,
                                            ArrowArray* out, ArrowSchema* out_type) noexcept nogil:
    cdef plutino_strings sb
    cdef char buf[16]
    cdef bint lat_int, lon_int, p_int64
    cdef int64_t i, r0, r1, r2, p
    cdef double lat, lon

    if _geohash_check(ctx, nargs, arg_types) != PLUTINO_OK:
        return PLUTINO_INVALID
    if _check_lengths(ctx, b"geohash", nargs, args, length) != PLUTINO_OK:
        return PLUTINO_INVALID
    lat_int = plutino_format_is(arg_types[0], b"l")
    lon_int = plutino_format_is(arg_types[1], b"l")
    p_int64 = plutino_format_is(arg_types[2], b"l")

    if plutino_strings_init(ctx, &sb, length, <size_t>(length * 8 + 16)) != PLUTINO_OK:
        return PLUTINO_NOMEM
    for i in range(length):
        r0 = plutino_arg_row(args[0], i)
        r1 = plutino_arg_row(args[1], i)
        r2 = plutino_arg_row(args[2], i)
        if not (plutino_is_valid(args[0], r0) and plutino_is_valid(args[1], r1)
                and plutino_is_valid(args[2], r2)):
            if plutino_strings_append_null(&sb) != PLUTINO_OK:
                plutino_strings_abort(&sb)
                return PLUTINO_NOMEM
            continue
        if p_int64:
            p = plutino_i64(args[2])[r2]
        else:
            p = (<const int32_t*>args[2].buffers[1] + args[2].offset)[r2]
        if p < 1 or p > GEO_MAX_PRECISION:
            plutino_strings_abort(&sb)
            plutino_set_error(ctx, b"geohash(): precision must be an integer from 1 to %d, got %lld "
                              b"(row %lld); e.g. geohash(lat, lon, 7)", GEO_MAX_PRECISION,
                              <long long>p, <long long>i)
            return PLUTINO_INVALID
        lat = _number(args[0], lat_int, r0)
        lon = _number(args[1], lon_int, r1)
        if isnan(lat) or lat < -90.0 or lat > 90.0:
            plutino_strings_abort(&sb)
            plutino_set_error(ctx, b"geohash(): latitude must be within [-90, 90] degrees, got %g "
                              b"(row %lld); filter such rows out, e.g. WHERE lat BETWEEN -90 AND 90",
                              lat, <long long>i)
            return PLUTINO_INVALID
        if isnan(lon) or lon < -180.0 or lon > 180.0:
            plutino_strings_abort(&sb)
            plutino_set_error(ctx, b"geohash(): longitude must be within [-180, 180] degrees, got %g "
                              b"(row %lld); filter such rows out, e.g. WHERE lon BETWEEN -180 AND 180",
                              lon, <long long>i)
            return PLUTINO_INVALID
        _encode(lat, lon, <int>p, buf)
        if plutino_strings_append(&sb, buf, <size_t>p) != PLUTINO_OK:
            plutino_strings_abort(&sb)
            return PLUTINO_NOMEM

    # out_type stays unset: validate() gave the type (utf8), and the host uses it.
    return plutino_strings_finish(&sb, out)
