# plutino.pxd -- Cython declarations of the Plutino plugin contract (ABI 1.0, contract 1.0.0).
#
# The specification is plutino.h: this file only restates it for Cython, field for field, and
# declares the inline helpers of plutino_helpers.h. Everything is `nogil`, so a plugin's hot
# loop over Arrow arrays runs without touching Python.
#
#     # cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#     from libc.stdint cimport int32_t, int64_t
#     from plutino cimport *          # or: cimport plutino  (then plutino.ArrowArray, ...)
#
#     cdef plutino_status twice_call(plutino_context* ctx, void* state, int32_t nargs,
#                                    const ArrowArray* const* args,
#                                    const ArrowSchema* const* arg_types, int64_t n,
#                                    ArrowArray* out, ArrowSchema* out_type) noexcept nogil:
#         cdef const double* x = plutino_f64(args[0])
#         cdef double* res = plutino_result_f64(ctx, out, n)
#         if res == NULL:
#             return PLUTINO_NOMEM
#         for i in range(n):          # (nulls: see plutino_is_valid / plutino_result_set_null)
#             res[i] = x[plutino_arg_row(args[0], i)] * 2
#         if plutino_schema_make(out_type, b"g", b"") != PLUTINO_OK:
#             out.release(out)          # a failed call leaves *out released
#             return PLUTINO_NOMEM
#         return PLUTINO_OK
#
# plutino_add_plugin() (CMake) puts this file's directory on Cython's include path, so
# `cimport plutino` works in a .pyx listed in SOURCES.
#
# What a Cython plugin must know, because the host loads it as a plain shared object:
#   * The module is never imported: its module init never runs. Module-level Python objects
#     do not exist and module-level `cdef` variables are only zero-initialised C statics.
#     Fill the descriptor and function table inside the entry function (below), not at module
#     level, and use only C in callbacks.
#   * Callbacks are `noexcept nogil` and must never raise: compile with cdivision=True,
#     boundscheck=False and wraparound=False so Cython inserts no Python error paths, and
#     report failures as a status plus plutino_set_error().
#   * The ABI tag is data the host reads from the file, and its name and version must be C
#     string literals, so it is written in a verbatim C block; the entry symbol is a `cdef
#     public` function, made visible by the declaration in this file (PLUTINO_EXPORT):
#
#         cdef extern from *:
#             """
#             PLUTINO_TAG_RECORD(PLUTINO_KIND_FUNCTION, "geo", PLUTINO_PLUGIN_VERSION,
#                                PLUTINO_ABI_MAJOR, PLUTINO_ABI_MINOR);
#             """
#
#         cdef plutino_function haversine_fn
#         cdef const plutino_function* geo_functions[1]
#         cdef plutino_plugin descriptor
#
#         cdef public const plutino_plugin* plutino_plugin_v1() noexcept nogil:
#             if descriptor.struct_size == 0:
#                 haversine_fn.struct_size = sizeof(plutino_function)
#                 haversine_fn.name = b"haversine"
#                 ... (min_args, max_args, call)
#                 geo_functions[0] = &haversine_fn
#                 descriptor.abi_major = PLUTINO_ABI_MAJOR
#                 ... (abi_minor, kind, function_count, name, version, contract_version,
#                      functions; the name, version and kind must agree with the tag)
#                 descriptor.struct_size = sizeof(plutino_plugin)   # last: marks it filled
#             return &descriptor
#
#     The host calls plutino_plugin_v1 once, right after loading and before anything else.
#     Setting a field (haversine_fn.name = ...) writes the module-level struct; assigning a
#     whole struct (other_fn = haversine_fn) makes a local unless declared `global other_fn`.
#
#     The other way, used by Plutino's native_plugins/functions/geo/geo.pyx: make the callbacks
#     `cdef public` (their C names are then fixed), declare them in the verbatim C block and
#     write the function table and PLUTINO_DECLARE_FUNCTIONS there, as a C plugin would; the
#     tables are then constant C data, initialised before any code runs.

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t


# ------------------------------------------------------------------ plutino.h: the ABI

cdef extern from "plutino/plutino.h" nogil:

    # -------------------------------------------------------------- versions and names
    enum:
        PLUTINO_ABI_MAJOR
        PLUTINO_ABI_MINOR
        PLUTINO_TAG_FORMAT

    const char* PLUTINO_CONTRACT_VERSION   # the contract release, e.g. "1.1.0"
    const char* PLUTINO_ENTRY_SYMBOL       # "plutino_plugin_v1"
    const char* PLUTINO_TAG_SECTION        # ".plutino_tag"
    const char* PLUTINO_TAG_MAGIC          # "PLUTINO"
    # Compile-time facts the tag records for the plugin being built.
    const char* PLUTINO_TAG_OS
    const char* PLUTINO_TAG_ARCH
    const char* PLUTINO_TAG_LIBC
    const char* PLUTINO_TAG_RUNTIME        # "" or the CPython the plugin was compiled against, "cp311"
    enum:
        PLUTINO_TAG_BYTE_ORDER

    # Plugin kinds (plutino_tag.kind, plutino_plugin.kind).
    enum:
        PLUTINO_KIND_SOURCE
        PLUTINO_KIND_SINK
        PLUTINO_KIND_FUNCTION

    # -------------------------------------------------------------- status codes
    ctypedef int32_t plutino_status

    enum:
        PLUTINO_OK
        PLUTINO_ERROR
        PLUTINO_INVALID
        PLUTINO_IO
        PLUTINO_NOMEM
        PLUTINO_AGAIN
        PLUTINO_EOF
        PLUTINO_UNSUPPORTED

    # Log levels for plutino_host_api.log / plutino_log().
    enum:
        PLUTINO_LOG_DEBUG
        PLUTINO_LOG_INFO
        PLUTINO_LOG_WARN
        PLUTINO_LOG_ERROR

    # Connection status returned by a source's or sink's status().
    enum:
        PLUTINO_CONN_CONNECTED
        PLUTINO_CONN_CONNECTING
        PLUTINO_CONN_DISCONNECTED

    # plutino_function.flags
    enum:
        PLUTINO_FN_AGGREGATE
        PLUTINO_FN_VOLATILE

    # -------------------------------------------------------------- Arrow C Data Interface
    enum:
        ARROW_FLAG_DICTIONARY_ORDERED
        ARROW_FLAG_NULLABLE
        ARROW_FLAG_MAP_KEYS_SORTED

    struct ArrowSchema:
        const char* format
        const char* name
        const char* metadata
        int64_t flags
        int64_t n_children
        ArrowSchema** children
        ArrowSchema* dictionary
        void (*release)(ArrowSchema*) noexcept nogil
        void* private_data

    struct ArrowArray:
        int64_t length
        int64_t null_count
        int64_t offset
        int64_t n_buffers
        int64_t n_children
        const void** buffers
        ArrowArray** children
        ArrowArray* dictionary
        void (*release)(ArrowArray*) noexcept nogil
        void* private_data

    # -------------------------------------------------------------- the ABI tag
    ctypedef struct plutino_tag:
        char magic[8]
        uint16_t tag_size
        uint16_t tag_format
        uint16_t abi_major
        uint16_t abi_minor
        uint8_t kind
        uint8_t byte_order
        uint8_t pointer_size
        uint8_t reserved0
        char os[12]
        char arch[16]
        char libc[16]
        char name[64]
        char plugin_version[32]
        char contract_version[16]
        char runtime[12]
        uint8_t reserved[4]

    # -------------------------------------------------------------- host services
    # plutino_context and plutino_host_api refer to each other; the context is declared
    # first (its `host` field is completed by the struct below).
    ctypedef struct plutino_host_api

    ctypedef struct plutino_context:
        uint32_t struct_size
        uint32_t error_capacity
        char* error
        const plutino_host_api* host
        void* host_data
        const char* plugin_name
        const char* rule_id
        const char* op_id
        int64_t instance_id
        const char* data_dir

    ctypedef struct plutino_host_api:
        uint32_t struct_size
        uint16_t abi_major
        uint16_t abi_minor
        const char* host_version
        void (*log)(plutino_context* ctx, int32_t level,
                    const char* message) noexcept nogil
        void* (*alloc)(size_t size) noexcept nogil
        void (*free)(void* ptr) noexcept nogil

    # -------------------------------------------------------------- sources
    ctypedef struct plutino_source_api:
        uint32_t struct_size
        plutino_status (*create)(plutino_context* ctx, const char* config_json,
                                 void** out_instance) noexcept nogil
        plutino_status (*schema)(plutino_context* ctx, void* instance,
                                 ArrowSchema* out_schema) noexcept nogil
        plutino_status (*open)(plutino_context* ctx, void* instance) noexcept nogil
        plutino_status (*next)(plutino_context* ctx, void* instance, int64_t timeout_us,
                               ArrowArray* out_batch) noexcept nogil
        int32_t (*status)(plutino_context* ctx, void* instance) noexcept nogil
        void (*close)(plutino_context* ctx, void* instance) noexcept nogil
        plutino_status (*ack)(plutino_context* ctx, void* instance, int64_t seq) noexcept nogil  # since 1.1

    # -------------------------------------------------------------- sinks
    ctypedef struct plutino_sink_api:
        uint32_t struct_size
        plutino_status (*create)(plutino_context* ctx, const char* config_json,
                                 void** out_instance) noexcept nogil
        plutino_status (*open)(plutino_context* ctx, void* instance) noexcept nogil
        plutino_status (*write)(plutino_context* ctx, void* instance, const ArrowSchema* schema,
                                const ArrowArray* batch) noexcept nogil
        plutino_status (*flush)(plutino_context* ctx, void* instance) noexcept nogil
        int32_t (*status)(plutino_context* ctx, void* instance) noexcept nogil
        void (*close)(plutino_context* ctx, void* instance) noexcept nogil

    # -------------------------------------------------------------- functions
    ctypedef struct plutino_function:
        uint32_t struct_size
        uint32_t flags
        const char* name
        int32_t min_args
        int32_t max_args
        plutino_status (*validate)(plutino_context* ctx, int32_t nargs,
                                   const ArrowSchema* const* arg_types,
                                   ArrowSchema* out_type) noexcept nogil
        plutino_status (*create)(plutino_context* ctx, void** out_state) noexcept nogil
        void (*destroy)(plutino_context* ctx, void* state) noexcept nogil
        plutino_status (*call)(plutino_context* ctx, void* state, int32_t nargs,
                               const ArrowArray* const* args,
                               const ArrowSchema* const* arg_types, int64_t length,
                               ArrowArray* out, ArrowSchema* out_type) noexcept nogil
        plutino_status (*aggregate)(plutino_context* ctx, void* state, int32_t nargs,
                                    const ArrowArray* const* args,
                                    const ArrowSchema* const* arg_types, int64_t length,
                                    const int32_t* group_ids, int64_t ngroups,
                                    ArrowArray* out,
                                    ArrowSchema* out_type) noexcept nogil

    # -------------------------------------------------------------- the descriptor
    ctypedef struct plutino_plugin:
        uint32_t struct_size
        uint16_t abi_major
        uint16_t abi_minor
        uint32_t kind
        uint32_t function_count
        const char* name
        const char* version
        const char* contract_version
        const plutino_source_api* source
        const plutino_sink_api* sink
        const plutino_function* const* functions

    ctypedef const plutino_plugin* (*plutino_entry_fn)() noexcept nogil


# ------------------------------------------------------------------ build-time names

cdef extern from *:
    """
    #include "plutino/plutino.h"
    /* A Cython plugin defines the entry symbol as a `cdef public` function; this prior
    ** declaration gives it default visibility in a library built with hidden visibility. */
    PLUTINO_EXTERN_C PLUTINO_EXPORT const plutino_plugin* plutino_plugin_v1(void);
    #ifndef PLUTINO_PLUGIN_VERSION
    #define PLUTINO_PLUGIN_VERSION "0.0.0"
    #endif
    """
    # The plugin's version as given to plutino_add_plugin(... VERSION v) ("0.0.0" when built
    # some other way without -DPLUTINO_PLUGIN_VERSION).
    const char* PLUTINO_PLUGIN_VERSION


# ------------------------------------------------------------------ plutino_helpers.h

cdef extern from "plutino/plutino_helpers.h" nogil:

    # errors and logging
    plutino_status plutino_set_error(plutino_context* ctx, const char* fmt, ...)
    void plutino_log(plutino_context* ctx, int32_t level, const char* fmt, ...)

    # memory
    ctypedef void* (*plutino_alloc_fn)(size_t) noexcept nogil
    ctypedef void (*plutino_free_fn)(void*) noexcept nogil

    # reading arrays
    bint plutino_format_is(const ArrowSchema* s, const char* fmt)
    int64_t plutino_arg_row(const ArrowArray* a, int64_t i)
    bint plutino_is_valid(const ArrowArray* a, int64_t i)
    const double* plutino_f64(const ArrowArray* a)
    const int64_t* plutino_i64(const ArrowArray* a)
    bint plutino_bool(const ArrowArray* a, int64_t i)
    const char* plutino_str(const ArrowArray* a, int64_t i, int32_t* len)
    const char* plutino_large_str(const ArrowArray* a, int64_t i, int64_t* len)

    # strings: "u"/"U" (utf8, large utf8) and "z"/"Z" (binary, large binary) alike
    bint plutino_is_utf8(const ArrowSchema* s)
    bint plutino_is_binary(const ArrowSchema* s)
    const char* plutino_str_at(const ArrowSchema* s, const ArrowArray* a, int64_t i, int64_t* len)

    # fixed-width results
    double* plutino_result_f64(plutino_context* ctx, ArrowArray* out, int64_t length)
    int64_t* plutino_result_i64(plutino_context* ctx, ArrowArray* out, int64_t length)
    uint8_t* plutino_result_bool(plutino_context* ctx, ArrowArray* out, int64_t length)
    void plutino_bit_set(uint8_t* bits, int64_t i, int v)
    plutino_status plutino_result_set_null(plutino_context* ctx, ArrowArray* out, int64_t i)

    # string results
    ctypedef struct plutino_strings:
        plutino_context* ctx
        int64_t capacity_rows
        int64_t rows
        int64_t null_count
        int32_t* offsets
        uint8_t* validity
        char* data
        size_t data_len
        size_t data_cap

    plutino_status plutino_strings_init(plutino_context* ctx, plutino_strings* sb, int64_t rows,
                                        size_t bytes_hint)
    plutino_status plutino_strings_append(plutino_strings* sb, const char* p, size_t len)
    plutino_status plutino_strings_append_null(plutino_strings* sb)
    void plutino_strings_abort(plutino_strings* sb)
    plutino_status plutino_strings_finish(plutino_strings* sb, ArrowArray* out)

    # schemas
    plutino_status plutino_schema_make(ArrowSchema* out, const char* format, const char* name)
    plutino_status plutino_schema_struct(ArrowSchema* out, const char* name, int64_t n)

    # row batches
    plutino_status plutino_batch_struct(plutino_context* ctx, ArrowArray* out, int64_t length,
                                        int64_t n)


# ------------------------------------------------------------------ plutino_time.h
# Timestamp helpers (they include plutino_helpers.h).

cdef extern from "plutino/plutino_time.h" nogil:
    # timestamps: SQL datetime is timestamp[us], int64 microseconds since the epoch
    const char* PLUTINO_TIMESTAMP_US
    const char* PLUTINO_TIMESTAMP_US_UTC

    ctypedef struct plutino_utc:
        int32_t year
        int32_t month
        int32_t day
        int32_t hour
        int32_t minute
        int32_t second
        int32_t microsecond

    bint plutino_is_timestamp(const ArrowSchema* s)
    const char* plutino_timestamp_zone(const ArrowSchema* s)
    int64_t plutino_timestamp_us(const ArrowSchema* s, const ArrowArray* a, int64_t i)
    int64_t* plutino_result_timestamp_us(plutino_context* ctx, ArrowArray* out, int64_t length)
    int64_t plutino_now_us()
    int64_t plutino_us_from_utc(int32_t year, int32_t month, int32_t day, int32_t hour, int32_t minute,
                                int32_t second, int32_t microsecond)
    void plutino_us_to_utc(int64_t us, plutino_utc* out)
    int plutino_us_format(int64_t us, char* buf, size_t cap)
    int plutino_us_parse(const char* text, size_t len, int64_t* out)
