# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# cy_funcs.pyx -- a function library written in Cython against plutino.pxd.
#
#   twice(x)    float64 -> float64, x * 2; nulls stay
#   upper(s)    utf8 -> utf8, ASCII upper-cased; refuses other types with a message
#   count(x)    aggregate: the non-null rows of each group, as int64
#
# The contract's tests compile it with Cython and gcc and call it through cffi. It also fills
# a source and a sink table with callbacks of the declared types, so that a signature in the
# .pxd that disagreed with plutino.h would fail the C compile.
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset
from plutino cimport *
cimport plutino

cdef extern from *:
    """
    PLUTINO_TAG_RECORD(PLUTINO_KIND_FUNCTION, "cy_funcs", PLUTINO_PLUGIN_VERSION,
                       PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR);
    """


cdef plutino_status twice_call(plutino_context* ctx, void* state, int32_t nargs,
                               const ArrowArray* const* args, const ArrowSchema* const* types,
                               int64_t n, ArrowArray* out, ArrowSchema* out_type) noexcept nogil:
    cdef const double* x = plutino_f64(args[0])
    cdef double* res = plutino_result_f64(ctx, out, n)
    cdef int64_t i, r
    if res == NULL:
        return PLUTINO_NOMEM
    for i in range(n):
        r = plutino_arg_row(args[0], i)
        if plutino_is_valid(args[0], r):
            res[i] = x[r] * 2
        else:
            res[i] = 0
            if plutino_result_set_null(ctx, out, i) != PLUTINO_OK:
                out.release(out)
                return PLUTINO_NOMEM
    if plutino_schema_make(out_type, b"g", b"") != PLUTINO_OK:
        out.release(out)
        return PLUTINO_NOMEM
    return PLUTINO_OK


cdef plutino_status upper_call(plutino_context* ctx, void* state, int32_t nargs,
                               const ArrowArray* const* args, const ArrowSchema* const* types,
                               int64_t n, ArrowArray* out, ArrowSchema* out_type) noexcept nogil:
    cdef plutino_strings sb
    cdef int32_t length, j
    cdef const char* p
    cdef char buf[128]
    cdef int64_t i
    if not plutino.plutino_format_is(types[0], b"u"):
        plutino_set_error(ctx, b"upper: argument must be utf8 ('u'), got '%s'", types[0].format)
        return PLUTINO_INVALID
    if plutino_strings_init(ctx, &sb, n, 16) != PLUTINO_OK:
        return PLUTINO_NOMEM
    for i in range(n):
        if not plutino_is_valid(args[0], i):
            if plutino_strings_append_null(&sb) != PLUTINO_OK:
                plutino_strings_abort(&sb)
                return PLUTINO_NOMEM
            continue
        p = plutino_str(args[0], i, &length)
        if length > 128:
            length = 128
        for j in range(length):
            buf[j] = p[j] - 32 if b'a' <= p[j] <= b'z' else p[j]
        if plutino_strings_append(&sb, buf, length) != PLUTINO_OK:
            plutino_strings_abort(&sb)
            return PLUTINO_NOMEM
    if plutino_strings_finish(&sb, out) != PLUTINO_OK:
        return PLUTINO_NOMEM
    if plutino_schema_make(out_type, b"u", b"") != PLUTINO_OK:
        out.release(out)
        return PLUTINO_NOMEM
    return PLUTINO_OK


cdef plutino_status count_aggregate(plutino_context* ctx, void* state, int32_t nargs,
                                    const ArrowArray* const* args,
                                    const ArrowSchema* const* types, int64_t length,
                                    const int32_t* group_ids, int64_t ngroups,
                                    ArrowArray* out, ArrowSchema* out_type) noexcept nogil:
    cdef int64_t* counts = plutino_result_i64(ctx, out, ngroups)
    cdef int64_t i
    if counts == NULL:
        return PLUTINO_NOMEM
    memset(counts, 0, ngroups * sizeof(int64_t))
    for i in range(length):
        if plutino_is_valid(args[0], i):
            counts[group_ids[i] if group_ids != NULL else 0] += 1
    plutino_log(ctx, PLUTINO_LOG_DEBUG, b"count: %lld groups", <long long>ngroups)
    if plutino_schema_make(out_type, b"l", b"") != PLUTINO_OK:
        out.release(out)
        return PLUTINO_NOMEM
    return PLUTINO_OK


cdef plutino_status twice_validate(plutino_context* ctx, int32_t nargs,
                                   const ArrowSchema* const* arg_types,
                                   ArrowSchema* out_type) noexcept nogil:
    return plutino_schema_make(out_type, b"g", b"")


cdef plutino_status no_state(plutino_context* ctx, void** out_state) noexcept nogil:
    out_state[0] = NULL
    return PLUTINO_OK


cdef void no_destroy(plutino_context* ctx, void* state) noexcept nogil:
    pass


# Callbacks of every source and sink slot: never called, only type-checked by the C compiler.
cdef plutino_status cb_create(plutino_context* ctx, const char* config_json,
                              void** out_instance) noexcept nogil:
    return PLUTINO_UNSUPPORTED

cdef plutino_status cb_schema(plutino_context* ctx, void* instance,
                              ArrowSchema* out_schema) noexcept nogil:
    return PLUTINO_UNSUPPORTED

cdef plutino_status cb_open(plutino_context* ctx, void* instance) noexcept nogil:
    return PLUTINO_OK

cdef plutino_status cb_next(plutino_context* ctx, void* instance, int64_t timeout_us,
                            ArrowArray* out_batch) noexcept nogil:
    return PLUTINO_EOF

cdef plutino_status cb_write(plutino_context* ctx, void* instance, const ArrowSchema* schema,
                             const ArrowArray* batch) noexcept nogil:
    return PLUTINO_OK

cdef int32_t cb_status(plutino_context* ctx, void* instance) noexcept nogil:
    return PLUTINO_CONN_CONNECTED

cdef void cb_close(plutino_context* ctx, void* instance) noexcept nogil:
    pass


cdef plutino_source_api unused_source
cdef plutino_sink_api unused_sink
cdef plutino_function twice_fn, upper_fn, count_fn
cdef const plutino_function* cy_functions[3]
cdef plutino_plugin descriptor


cdef public const plutino_plugin* plutino_plugin_v1() noexcept nogil:
    # The module is never imported, so its tables are filled here, on the host's one call.
    if descriptor.struct_size != 0:
        return &descriptor
    unused_source.struct_size = sizeof(plutino_source_api)
    unused_source.create = cb_create
    unused_source.schema = cb_schema
    unused_source.open = cb_open
    unused_source.next = cb_next
    unused_source.status = cb_status
    unused_source.close = cb_close
    unused_sink.struct_size = sizeof(plutino_sink_api)
    unused_sink.create = cb_create
    unused_sink.open = cb_open
    unused_sink.write = cb_write
    unused_sink.flush = cb_open
    unused_sink.status = cb_status
    unused_sink.close = cb_close

    twice_fn.struct_size = sizeof(plutino_function)
    twice_fn.name = b"twice"
    twice_fn.min_args = twice_fn.max_args = 1
    twice_fn.validate = twice_validate
    twice_fn.create = no_state
    twice_fn.destroy = no_destroy
    twice_fn.call = twice_call
    upper_fn.struct_size = sizeof(plutino_function)
    upper_fn.name = b"upper"
    upper_fn.min_args = upper_fn.max_args = 1
    upper_fn.call = upper_call
    count_fn.struct_size = sizeof(plutino_function)
    count_fn.flags = PLUTINO_FN_AGGREGATE
    count_fn.name = b"count"
    count_fn.min_args = count_fn.max_args = 1
    count_fn.aggregate = count_aggregate
    cy_functions[0] = &twice_fn
    cy_functions[1] = &upper_fn
    cy_functions[2] = &count_fn

    descriptor.abi_major = PLUTINO_ABI_MAJOR
    descriptor.abi_minor = PLUTINO_ABI_MINOR
    descriptor.kind = PLUTINO_KIND_FUNCTION
    descriptor.function_count = 3
    descriptor.name = b"cy_funcs"
    descriptor.version = PLUTINO_PLUGIN_VERSION
    descriptor.contract_version = PLUTINO_CONTRACT_VERSION
    descriptor.functions = cy_functions
    descriptor.struct_size = sizeof(plutino_plugin)
    return &descriptor
