/*
** plutino.h -- the Plutino native plugin contract, ABI 1.1 (plutino-contract 1.1.0)
**
** This header is the specification. A plugin author reads this file (and, for the
** convenience helpers, plutino_helpers.h) and nothing else.
**
** A Plutino plugin is a shared object (.so) of exactly one kind:
**
**   PLUTINO_KIND_SOURCE    brings rows into a stream      (SQL: CREATE STREAM s () WITH (TYPE="name"))
**   PLUTINO_KIND_SINK      receives the rows a rule emits (rule action: {"name": {...}})
**   PLUTINO_KIND_FUNCTION  a library of SQL functions, scalar or aggregate (SELECT f(x) FROM s)
**
** It exposes two things, both produced by one of the PLUTINO_DECLARE_* macros at the
** bottom of this file:
**
**   1. The ABI tag: a data-only record (plutino_tag) in the ELF section ".plutino_tag".
**      The host reads it from the file *before* loading it, so a plugin built for another
**      ABI, machine or C library is refused without running any of its code.
**   2. The entry symbol `plutino_plugin_v1`: a function that returns the plugin's
**      descriptor (plutino_plugin). It is the only visible symbol of the plugin.
**
** Versioning rules (the contract's promise to plugin authors)
** ----------------------------------------------------------
** - The ABI is versioned MAJOR.MINOR. A host with ABI M.n loads a plugin built for M.m when
**   m <= n. Any other major, or a newer minor, is refused with a message naming both sides.
** - Within a major, no published layout changes: fields are only appended at the end of a
**   struct, and removed callbacks leave their slot (set to NULL). Every struct that crosses
**   the ABI starts with `uint32_t struct_size`, set to sizeof() of the struct as the writer
**   compiled it, so the reader knows which fields the writer had. Each struct says the ABI
**   minor that added it ("since 1.0"); a field appended later carries its own mark,
**   "since 1.N", which the host reads to know every struct's size at every minor.
** - The host reads only the fields inside a plugin's struct_size (a shorter, older struct is
**   read as if the missing fields were NULL/0). A plugin reads a host struct's field newer
**   than the minor it targets only behind PLUTINO_HAS_FIELD; PLUTINO_TARGET_ABI_MINOR lets a
**   plugin built against a newer header still load into older hosts of the same major.
** - The plutino-contract release (PLUTINO_CONTRACT_VERSION) has the ABI's major and a minor at
**   least the ABI's: a release may add macros, helpers and tag fields in reserved bytes
**   without changing the ABI.
** - ABI 1 plugins are ELF shared objects (Linux): the host reads the tag from the ELF file.
**
** Data: batches in the Arrow C Data Interface
** -------------------------------------------
** Rows cross the ABI in batches, as Arrow C Data Interface arrays (the structs below, exactly
** as published by the Apache Arrow project). A batch of rows is a struct array ("+s") whose
** children are the columns. The host never calls a plugin once per row.
**
** Ownership follows the Arrow release-callback rules, and this contract adds one plain rule:
**   * BORROWED: an array or schema the host passes *into* a call (function arguments, the
**     batch given to a sink) belongs to the host. It is valid only for the duration of the
**     call. The plugin must not release it, modify it or keep pointers into it after
**     returning; copy what you need to keep.
**   * MOVED: an array or schema a plugin writes into an `out` parameter (a function result,
**     a source batch, a schema) is moved to the host. The plugin fills in the struct,
**     including a `release` callback, and the host calls that callback exactly once when it
**     is done -- possibly from another thread, possibly after the instance is closed, but
**     never after the plugin is unloaded (the host never unloads a plugin that has live data).
**     On any status other than PLUTINO_OK the plugin must leave `out` untouched (release
**     stays NULL) or released.
**
** Errors are values
** -----------------
** Every call that can fail returns a plutino_status. On failure the plugin writes a message
** for the user into its context (plutino_set_error() in plutino_helpers.h does this), and the
** host shows it with the plugin's name: "plugin 'random': interval must be > 0, got -5".
** Write messages for the person who configured the rule: what is wrong, the value, the fix.
** A plugin never aborts the process, never exits, never prints to stdout or stderr: use the
** host's log service.
**
** Threads
** -------
** The host never calls into one instance (one source, one sink, one function state) from two
** threads at once. Different instances may be called concurrently, so a plugin keeps its
** mutable state in its instance, not in globals. The host calls plugins with the Python GIL
** released; a plugin must not call into Python.
**
** Strings
** -------
** String columns arrive as Arrow "u" (utf8, int32 offsets) or "U" (large utf8, int64 offsets),
** depending on where the data came from (a decoded JSON payload, a pyarrow table, another
** plugin's result): read both (plutino_helpers.h's readers do), and check which in validate().
** C strings (char*) are UTF-8 and NUL-terminated. Strings a plugin puts in its descriptor and
** function table must live as long as the plugin is loaded (string literals are ideal).
** Strings the host passes (config JSON, context fields) are valid for the duration noted
** at each one.
*/
#ifndef PLUTINO_H
#define PLUTINO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------ */
/* Versions and names                                                                   */
/* ------------------------------------------------------------------------------------ */

/* The ABI this header describes. A plugin records these in its tag and descriptor. */
#define PLUTINO_ABI_MAJOR 1
#define PLUTINO_ABI_MINOR 1

/* The plutino-contract release this header ships in (informational; the ABI is what counts). */
#define PLUTINO_CONTRACT_VERSION "1.1.0"

/* The one exported symbol. Its name carries the ABI major: a 2.x contract uses a new name. */
#define PLUTINO_ENTRY_SYMBOL "plutino_plugin_v1"

/* The ELF section holding the tag, and the tag's magic and layout version. */
#define PLUTINO_TAG_SECTION ".plutino_tag"
#define PLUTINO_TAG_MAGIC "PLUTINO"      /* 7 characters + NUL = the 8 bytes of magic[] */
#define PLUTINO_TAG_FORMAT 1

/* Plugin kinds (plutino_tag.kind, plutino_plugin.kind). */
#define PLUTINO_KIND_SOURCE 1
#define PLUTINO_KIND_SINK 2
#define PLUTINO_KIND_FUNCTION 3

/* ------------------------------------------------------------------------------------ */
/* Status codes                                                                         */
/* ------------------------------------------------------------------------------------ */

/* Every fallible call returns one of these. Anything but PLUTINO_OK (and, for a source's
** next(), PLUTINO_AGAIN / PLUTINO_EOF) is a failure whose message is in the context. */
/* PLUTINO_CDEF_BEGIN */
typedef int32_t plutino_status;
/* PLUTINO_CDEF_END */

#define PLUTINO_OK 0          /* success */
#define PLUTINO_ERROR 1       /* failure; the message says why */
#define PLUTINO_INVALID 2     /* the user's input is wrong: config, argument types, values */
#define PLUTINO_IO 3          /* an I/O failure that may succeed if retried (sinks: resend) */
#define PLUTINO_NOMEM 4       /* out of memory */
#define PLUTINO_AGAIN 5       /* source next(): no batch within the timeout; not an error */
#define PLUTINO_EOF 6         /* source next(): a bounded source has no more data */
#define PLUTINO_UNSUPPORTED 7 /* the call or the argument types are not supported */

/* Log levels for plutino_host_api.log. */
#define PLUTINO_LOG_DEBUG 10
#define PLUTINO_LOG_INFO 20
#define PLUTINO_LOG_WARN 30
#define PLUTINO_LOG_ERROR 40

/* Connection status reported by a source's or sink's status() callback. */
#define PLUTINO_CONN_CONNECTED 0
#define PLUTINO_CONN_CONNECTING 1
#define PLUTINO_CONN_DISCONNECTED 2

/* Function flags (plutino_function.flags). */
#define PLUTINO_FN_AGGREGATE 1u     /* an aggregate: implements aggregate(), not call() */
#define PLUTINO_FN_VOLATILE 2u      /* may return different results for the same arguments
                                    ** (random, time, outside state). Without it, a call whose
                                    ** arguments are all constants (or that has none) is computed
                                    ** once per rule run: call() with length 1 on the first batch,
                                    ** its row reused for every row after. With it, call() runs
                                    ** for every batch. Calls with a column argument run per batch
                                    ** either way; no effect on aggregates. */

/* ------------------------------------------------------------------------------------ */
/* The Arrow C Data Interface                                                           */
/* ------------------------------------------------------------------------------------ */

/* These two structs are the Apache Arrow C Data Interface, unchanged. The guard is the
** standard one, so a plugin may include Arrow's own header (or nanoarrow) before or after
** this one. Formats used by the host: "b" bool, "l" int64, "g" float64, "u" utf8,
** "U" large utf8, "z" binary, "+s" struct, "+l" list, "tsu:" timestamp[us]. */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

/* PLUTINO_CDEF_BEGIN */
struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};
/* PLUTINO_CDEF_END */

#endif /* ARROW_C_DATA_INTERFACE */

/* ------------------------------------------------------------------------------------ */
/* The ABI tag                                                                          */
/* ------------------------------------------------------------------------------------ */

/* Everything between the PLUTINO_CDEF markers is also the cffi declaration the host uses
** (plutino_contract.CDEF reads it from this file), so it is kept to plain C declarations. */

/* PLUTINO_CDEF_BEGIN */

/* plutino_tag: the data-only record the host reads from the file before loading it.
** Fixed layout, 192 bytes, no padding; multi-byte integers are in the plugin's byte order
** (byte_order says which, and the ELF header agrees). Text fields are NUL-padded.
** Written by PLUTINO_DECLARE_*; never write one by hand. (since 1.0) */
typedef struct plutino_tag {
  char magic[8];              /* "PLUTINO\0" */
  uint16_t tag_size;          /* sizeof(plutino_tag) as built: 192 for format 1 */
  uint16_t tag_format;        /* PLUTINO_TAG_FORMAT */
  uint16_t abi_major;         /* PLUTINO_ABI_MAJOR the plugin was built against */
  uint16_t abi_minor;         /* PLUTINO_ABI_MINOR the plugin was built against */
  uint8_t kind;               /* PLUTINO_KIND_* */
  uint8_t byte_order;         /* 1 = little endian, 2 = big endian */
  uint8_t pointer_size;       /* sizeof(void *): 8 or 4 */
  uint8_t reserved0;          /* 0 */
  char os[12];                /* "linux", "darwin", "windows", "unknown" */
  char arch[16];              /* "x86_64", "aarch64", "i386", "arm", "riscv64", "ppc64le", "s390x", ... */
  char libc[16];              /* "glibc", "musl" (on Linux when not glibc), "none" elsewhere */
  char name[64];              /* plugin name: letters, digits, '-', '_'; at most 63 bytes */
  char plugin_version[32];    /* the plugin's own version, e.g. "1.2.0" */
  char contract_version[16];  /* PLUTINO_CONTRACT_VERSION the plugin was built with */
  char runtime[12];           /* the runtime it needs besides libc: "" or "cp311" (PLUTINO_TAG_RUNTIME);
                              ** contract 1.1.0, in bytes that were zero before */
  uint8_t reserved[4];        /* zero; room for later tag formats */
} plutino_tag;

typedef struct plutino_context plutino_context;

/* ------------------------------------------------------------------------------------ */
/* Host services                                                                        */
/* ------------------------------------------------------------------------------------ */

/* plutino_host_api: what the host offers a plugin. Reached through ctx->host; valid for the
** life of the context. (since 1.0) */
typedef struct plutino_host_api {
  uint32_t struct_size;
  uint16_t abi_major;         /* the host's ABI; a plugin may use fields its minor added */
  uint16_t abi_minor;
  const char* host_version;   /* the host's release, e.g. "0.1.0" */
  /* Write `message` into the host's log at `level` (PLUTINO_LOG_*), tagged with the
  ** plugin name and rule id of `ctx`. Thread-safe. The host copies the message. */
  void (*log)(plutino_context* ctx, int32_t level, const char* message);
  /* Memory for data handed to the host (result buffers), released with `free` below:
  ** aligned for any C type, as malloc's (16 bytes on 64-bit platforms; Arrow needs 8 and
  ** recommends 64 only for SIMD-friendly buffers, which a plugin may align itself). Plugins
  ** may use their own allocator instead, as long as their release callbacks free with the
  ** matching function. alloc returns NULL when out of memory. */
  void* (*alloc)(size_t size);
  void (*free)(void* ptr);
} plutino_host_api;

/* plutino_context: one per instance (a source, a sink, a use of a function in a rule),
** created by the host and passed to every call on that instance. Valid from create() until
** close()/destroy() returns. (since 1.0) */
struct plutino_context {
  uint32_t struct_size;
  /* The last error of this instance: a buffer owned by the host, of error_capacity bytes.
  ** A failing call writes its message here (use plutino_set_error()); the host reads it
  ** when the call returns a failure status and clears it before the next call. */
  uint32_t error_capacity;
  char* error;
  const plutino_host_api* host;
  void* host_data;            /* the host's own; plugins do not touch it */
  const char* plugin_name;    /* this plugin's name */
  const char* rule_id;        /* the rule this instance serves, "" when none (e.g. validate) */
  const char* op_id;          /* the operator within the rule, "" when none */
  int64_t instance_id;        /* unique per instance within the host process */
  const char* data_dir;       /* the host's data directory ($PLUTINO_HOME) */
};

/* ------------------------------------------------------------------------------------ */
/* Sources                                                                              */
/* ------------------------------------------------------------------------------------ */

/* plutino_source_api: a source produces batches of rows on demand (pull). The host calls
** next() on a thread of its own with the GIL released, in a loop, while the rule runs.
** Life cycle: create -> schema -> [open] -> next ... next -> close. (since 1.0)
**
** A "bytes" source (one whose payloads need decoding: MQTT, files, sockets) declares a single
** binary column named "payload" ("z"); the host then decodes each payload by the stream's
** FORMAT (json, ...). A "tuple" source declares its own columns. */
typedef struct plutino_source_api {
  uint32_t struct_size;
  /* Required. Parse and validate `config_json` (a JSON object: the plugin's yaml `default:`
  ** section, overlaid by the stream's CONF_KEY section, overlaid by the stream's own properties
  ** from CREATE STREAM ... WITH (...) other than the stream keywords (DATASOURCE, FORMAT, ...);
  ** those are checked against the `properties` of the plugin's metadata <name>.json when the
  ** stream is created and arrive spelled and typed as declared there; a plugin without
  ** metadata gets them as written. Valid only during the call.) Create an instance in
  ** *out_instance. Do no slow work
  ** here (no connecting): that is open()'s job. On failure: set the error, leave
  ** *out_instance NULL (or free what you allocated) and return PLUTINO_INVALID for a bad
  ** config, another status otherwise. */
  plutino_status (*create)(plutino_context* ctx, const char* config_json, void** out_instance);
  /* Required. Describe the rows of every batch: a struct schema ("+s") whose children are
  ** the columns. MOVED to the host. Called once after create(). */
  plutino_status (*schema)(plutino_context* ctx, void* instance, struct ArrowSchema* out_schema);
  /* Optional (NULL: nothing to do). Connect to the outside world. May block; the host calls
  ** it on the source's thread. */
  plutino_status (*open)(plutino_context* ctx, void* instance);
  /* Required. Write the next batch (a struct array of the declared schema) into *out_batch,
  ** MOVED to the host, and return PLUTINO_OK. Wait at most `timeout_us` microseconds for
  ** data; with none, return PLUTINO_AGAIN and leave *out_batch untouched. A bounded source
  ** returns PLUTINO_EOF once it has no more data (the rule then ends). A batch may hold
  ** any number of rows >= 1; larger batches are cheaper per row. */
  plutino_status (*next)(plutino_context* ctx, void* instance, int64_t timeout_us,
                         struct ArrowArray* out_batch);
  /* Optional (NULL: always connected). Return PLUTINO_CONN_*; shown in the rule status. */
  int32_t (*status)(plutino_context* ctx, void* instance);
  /* Required. Disconnect and free the instance. Must not fail. Batches already moved to
  ** the host stay valid until released. */
  void (*close)(plutino_context* ctx, void* instance);
  /* Optional (NULL: the host acknowledges nothing and the source is at-most-once).
  ** At-least-once: `seq` numbers the batches next() returned with PLUTINO_OK on this
  ** instance, from 1. ack(seq) says the host is done with batch `seq`: every rule reading
  ** the source wrote its rows to every sink, or dropped them by WHERE, or a sink refused them
  ** after its retries. A source that can replay (a broker session, a file offset, a queue)
  ** keeps a batch until it is acknowledged and replays what was not when it is opened again;
  ** a stop or a crash acknowledges nothing in flight. Acknowledgements may come out of order
  ** (a window holds its rows), each batch at most once. Called on the source's thread
  ** between next() calls, never during another call on the instance; those due when the rule
  ** stops come before close(). Failure is logged, never retried: the batch is replayed.
  ** (since 1.1) */
  plutino_status (*ack)(plutino_context* ctx, void* instance, int64_t seq);
} plutino_source_api;

/* ------------------------------------------------------------------------------------ */
/* Sinks                                                                                */
/* ------------------------------------------------------------------------------------ */

/* plutino_sink_api: a sink receives the batches a rule emits.
** Life cycle: create -> [open] -> write ... write -> [flush] -> close. (since 1.0) */
typedef struct plutino_sink_api {
  uint32_t struct_size;
  /* Required. As for sources: validate config_json and create the instance. No slow work.
  ** config_json is the yaml default overlaid by the action's properties, without eKuiper's
  ** common sink properties, which the host applies itself (fields, sendSingle, dataTemplate,
  ** resendInterval, memoryCacheThreshold, bufferLength, retryCount, retryInterval,
  ** omitIfEmpty, flushInterval); format and delimiter are passed on. */
  plutino_status (*create)(plutino_context* ctx, const char* config_json, void** out_instance);
  /* Optional. Connect / open files. */
  plutino_status (*open)(plutino_context* ctx, void* instance);
  /* Required. Consume one batch: a struct array `batch` described by `schema`, both
  ** BORROWED for the duration of the call. Return PLUTINO_IO when the write may succeed if
  ** retried (the host resends after the action's resendInterval, or retries retryCount times
  ** every retryInterval when resendInterval is 0), another failure status when it will not. */
  plutino_status (*write)(plutino_context* ctx, void* instance, const struct ArrowSchema* schema,
                          const struct ArrowArray* batch);
  /* Optional. Push buffered rows out. Never called during another call on the instance. The
  ** host calls it after the last batch of a bounded stream, when the rule stops (before
  ** close), and, unless the action's flushInterval (ms, default 1000) is 0, at most
  ** flushInterval after a write that succeeded, so a buffered row waits no longer; a sink
  ** that is not written to is not called. On failure the error is counted and flush() is
  ** called again an interval later. */
  plutino_status (*flush)(plutino_context* ctx, void* instance);
  /* Optional (NULL: always connected). Return PLUTINO_CONN_*. */
  int32_t (*status)(plutino_context* ctx, void* instance);
  /* Required. Flush what is buffered if possible, disconnect and free. Must not fail. */
  void (*close)(plutino_context* ctx, void* instance);
} plutino_sink_api;

/* ------------------------------------------------------------------------------------ */
/* Functions                                                                            */
/* ------------------------------------------------------------------------------------ */

/* plutino_function: one SQL function. A function library lists several in its descriptor.
** Function names are case-insensitive in SQL and must not collide with a built-in function
** or another plugin's function (the host refuses the plugin and names both owners).
**
** Arguments arrive as `nargs` arrays, BORROWED, all of the call's `length` rows, except that
** an argument that is a constant in the SQL (echo(x, 'sep')) may arrive as an array of
** length 1 holding the constant: read row 0 for every row. Nulls follow Arrow validity
** bitmaps (plutino_is_valid()).
**
** Scalar functions (flags without PLUTINO_FN_AGGREGATE) implement call(): one result row per
** input row, `length` rows in all.
**
** Aggregate functions (PLUTINO_FN_AGGREGATE) implement aggregate(): the host hands over the
** rows of a whole window at once together with a group id per row, and the function returns
** one value per group. This is the "whole-group" style of eKuiper (an aggregate sees each
** group's values together), made columnar: one call per window, not per group or per row.
** `group_ids` is NULL when the window has a single group (all rows are group 0); otherwise
** group_ids[i] in [0, ngroups) is the group of row i. The result has `ngroups` rows, row g
** for group g. Groups can be empty only when ngroups == 1 and length == 0.
** (Incremental init/update/merge/finalize aggregates may be added in a later minor, in new
** slots at the end of this struct.) (since 1.0) */
typedef struct plutino_function {
  uint32_t struct_size;
  uint32_t flags;             /* PLUTINO_FN_* */
  const char* name;           /* SQL name: letters, digits, '_' */
  int32_t min_args;           /* fewest arguments accepted */
  int32_t max_args;           /* most arguments accepted, -1 for no limit */
  /* Optional. Called when a rule using the function is created: check the argument types
  ** (borrowed schemas, one per argument; a constant argument has ARROW_FLAG_NULLABLE unset
  ** and its name set to "const") and write the result type into *out_type (MOVED). On
  ** PLUTINO_INVALID the message is shown as a SQL error. NULL: the host checks only the
  ** argument count and learns the result type from the first batch. */
  plutino_status (*validate)(plutino_context* ctx, int32_t nargs,
                             const struct ArrowSchema* const* arg_types,
                             struct ArrowSchema* out_type);
  /* Optional. Create per-use state (one per use of the function in a rule); *out_state is
  ** then passed to call()/aggregate(). NULL: the state passed is NULL. */
  plutino_status (*create)(plutino_context* ctx, void** out_state);
  /* Optional. Free what create() made. Must not fail. */
  void (*destroy)(plutino_context* ctx, void* state);
  /* Scalar functions: required. Compute `length` result rows into *out (MOVED). Writing
  ** *out_type (MOVED) is optional when validate() gave the type: leave out_type->release
  ** NULL and the host uses the validated type, which saves work per batch. A written
  ** out_type must equal validate()'s type, or the result is refused as a contract violation
  ** naming both (the host never reads one type as another). With out_type unset, *out must
  ** be laid out as validate()'s type: the host checks its buffers and children, but cannot
  ** tell apart types of the same layout (int64 and float64), so a function that may return
  ** another type than validate()'s must write out_type. */
  plutino_status (*call)(plutino_context* ctx, void* state, int32_t nargs,
                         const struct ArrowArray* const* args,
                         const struct ArrowSchema* const* arg_types, int64_t length,
                         struct ArrowArray* out, struct ArrowSchema* out_type);
  /* Aggregate functions: required. Compute `ngroups` result rows into *out (MOVED), as
  ** described above; *out_type as for call(). */
  plutino_status (*aggregate)(plutino_context* ctx, void* state, int32_t nargs,
                              const struct ArrowArray* const* args,
                              const struct ArrowSchema* const* arg_types, int64_t length,
                              const int32_t* group_ids, int64_t ngroups,
                              struct ArrowArray* out, struct ArrowSchema* out_type);
} plutino_function;

/* ------------------------------------------------------------------------------------ */
/* The descriptor                                                                       */
/* ------------------------------------------------------------------------------------ */

/* plutino_plugin: what plutino_plugin_v1() returns. Static, immutable, valid while the
** plugin is loaded. The host checks that it agrees with the tag (kind, name, ABI) and that
** every required callback of its kind is present, and refuses the plugin otherwise.
** (since 1.0) */
typedef struct plutino_plugin {
  uint32_t struct_size;
  uint16_t abi_major;                 /* PLUTINO_ABI_MAJOR, as in the tag */
  uint16_t abi_minor;                 /* PLUTINO_ABI_MINOR, as in the tag */
  uint32_t kind;                      /* PLUTINO_KIND_*, as in the tag */
  uint32_t function_count;            /* number of entries in `functions` (function kind) */
  const char* name;                   /* as in the tag */
  const char* version;                /* as in the tag */
  const char* contract_version;       /* as in the tag */
  const plutino_source_api* source;   /* kind SOURCE: required; otherwise NULL */
  const plutino_sink_api* sink;       /* kind SINK: required; otherwise NULL */
  const plutino_function* const* functions; /* kind FUNCTION: function_count pointers */
} plutino_plugin;

/* The entry symbol's type. Called once, right after loading; must do no other work. */
typedef const plutino_plugin* (*plutino_entry_fn)(void);

/* PLUTINO_CDEF_END */

/* ------------------------------------------------------------------------------------ */
/* Using a newer header on an older host                                               */
/* ------------------------------------------------------------------------------------ */

/* PLUTINO_TARGET_ABI_MINOR: the oldest ABI minor of this major the plugin runs on. It is what
** the tag and descriptor record, so it is what a host compares with its own minor. By default
** it is the header's minor (a plugin built against 1.1 needs a 1.1 host). A plugin that wants
** 1.1 features where they exist and still loads into 1.0 hosts defines it before including
** this header:
**     #define PLUTINO_TARGET_ABI_MINOR 0
**     #include <plutino/plutino.h>
** and then reads any host field added after its target only behind PLUTINO_HAS_FIELD. Its own
** structs may be the newer, larger size: a host reads only the fields it knows of. */
#ifndef PLUTINO_TARGET_ABI_MINOR
#define PLUTINO_TARGET_ABI_MINOR PLUTINO_ABI_MINOR
#endif

/* PLUTINO_HAS_FIELD(ptr, type, field): whether the struct `ptr` points to (one that starts
** with struct_size, written by the other side) is large enough to hold `field`. A reader
** tests this before it reads a field added after the ABI minor the other side may have:
**     if (PLUTINO_HAS_FIELD(ctx->host, plutino_host_api, some_1_1_service)) ...
** Fields inside the writer's minor need no test; a field outside reads as absent, never as
** whatever bytes follow the struct. */
#define PLUTINO_HAS_FIELD(PTR, TYPE, FIELD) \
  ((size_t)(PTR)->struct_size >= offsetof(TYPE, FIELD) + sizeof(((TYPE*)0)->FIELD))

/* ------------------------------------------------------------------------------------ */
/* Declaring a plugin                                                                   */
/* ------------------------------------------------------------------------------------ */

/* Compile-time facts recorded in the tag.
** ABI 1 plugins are ELF shared objects (Linux): the host finds the tag by reading the ELF
** section table before it loads anything, and has no reader for Mach-O or PE files. A build
** for another object format stops here rather than producing a plugin no host can read. */
#if !defined(__ELF__)
#error "plutino ABI 1 plugins are ELF shared objects (Linux); this compiler does not produce ELF"
#endif
#if defined(__linux__)
#define PLUTINO_TAG_OS "linux"
#else
#define PLUTINO_TAG_OS "unknown"
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define PLUTINO_TAG_ARCH "x86_64"
#elif defined(__aarch64__) || defined(_M_ARM64)
#define PLUTINO_TAG_ARCH "aarch64"
#elif defined(__i386__) || defined(_M_IX86)
#define PLUTINO_TAG_ARCH "i386"
#elif defined(__arm__)
#define PLUTINO_TAG_ARCH "arm"
#elif defined(__riscv) && __riscv_xlen == 64
#define PLUTINO_TAG_ARCH "riscv64"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define PLUTINO_TAG_ARCH "ppc64le"
#elif defined(__s390x__)
#define PLUTINO_TAG_ARCH "s390x"
#else
#define PLUTINO_TAG_ARCH "unknown"
#endif

/* <stdint.h> pulls in <features.h> on glibc, which defines __GLIBC__. */
#if defined(__GLIBC__)
#define PLUTINO_TAG_LIBC "glibc"
#elif defined(__linux__)
#define PLUTINO_TAG_LIBC "musl"
#else
#define PLUTINO_TAG_LIBC "none"
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define PLUTINO_TAG_BYTE_ORDER 2
#else
#define PLUTINO_TAG_BYTE_ORDER 1
#endif

/* The tag must survive every linker setting a plugin may be built with. `used` keeps the
** compiler from dropping it; `retain` (gcc 11, clang 13) marks its section SHF_GNU_RETAIN so
** `-Wl,--gc-sections` keeps it; and the entry function takes the tag's address (see
** PLUTINO_DESCRIPTOR_ENTRY), a reference from a kept section that holds with older compilers
** and under -flto. `strip` never removes it: the section is allocated (part of the image). */
#if defined(__has_attribute)
#if __has_attribute(retain)
#define PLUTINO_RETAIN_ retain,
#endif
#endif
#ifndef PLUTINO_RETAIN_
#define PLUTINO_RETAIN_
#endif
#define PLUTINO_EXPORT __attribute__((visibility("default")))
#define PLUTINO_TAG_ATTR \
  __attribute__((used, PLUTINO_RETAIN_ aligned(8), section(PLUTINO_TAG_SECTION)))

/* The runtime a plugin needs beyond the C library, recorded in the tag (plutino_tag.runtime):
** "" for a plain C, C++ or Rust plugin; "cp311" (or "cp313t" for a free-threaded build) for
** code compiled against CPython's headers, such as a Cython plugin, which calls into the
** CPython API and so works only inside that CPython's minor version. Python.h is included
** before this header in Cython's output, so the version is read from it. */
#define PLUTINO_STR_(X) #X
#define PLUTINO_STR(X) PLUTINO_STR_(X)
#if defined(PY_MAJOR_VERSION) && defined(PY_MINOR_VERSION)
#if defined(Py_GIL_DISABLED)
#define PLUTINO_TAG_RUNTIME "cp" PLUTINO_STR(PY_MAJOR_VERSION) PLUTINO_STR(PY_MINOR_VERSION) "t"
#else
#define PLUTINO_TAG_RUNTIME "cp" PLUTINO_STR(PY_MAJOR_VERSION) PLUTINO_STR(PY_MINOR_VERSION)
#endif
#else
#define PLUTINO_TAG_RUNTIME ""
#endif

#ifdef __cplusplus
#define PLUTINO_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#define PLUTINO_EXTERN_C extern "C" /* a C++ plugin's entry symbol keeps its C name */
#else
#define PLUTINO_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define PLUTINO_EXTERN_C
#endif

PLUTINO_STATIC_ASSERT(sizeof(plutino_tag) == 192, "plutino_tag must be 192 bytes, unpadded");
PLUTINO_STATIC_ASSERT(PLUTINO_TARGET_ABI_MINOR >= 0 && PLUTINO_TARGET_ABI_MINOR <= PLUTINO_ABI_MINOR,
                      "PLUTINO_TARGET_ABI_MINOR must be between 0 and this header's PLUTINO_ABI_MINOR");

/* PLUTINO_TAG_RECORD(kind, name, version, abi_major, abi_minor): the tag definition alone.
** Plugins use PLUTINO_DECLARE_* below; this piece exists for the contract's own test
** fixtures, which build deliberately mismatched plugins. */
#define PLUTINO_TAG_RECORD(KIND, NAME, VERSION, ABI_MAJOR, ABI_MINOR)                       \
  PLUTINO_STATIC_ASSERT(sizeof(NAME) <= 64, "plugin name is longer than 63 bytes");        \
  PLUTINO_STATIC_ASSERT(sizeof(VERSION) <= 32, "plugin version is longer than 31 bytes"); \
  static PLUTINO_TAG_ATTR const plutino_tag plutino_tag_record = {                              \
      PLUTINO_TAG_MAGIC, (uint16_t)sizeof(plutino_tag), PLUTINO_TAG_FORMAT,                \
      (uint16_t)(ABI_MAJOR), (uint16_t)(ABI_MINOR), (uint8_t)(KIND),                       \
      PLUTINO_TAG_BYTE_ORDER, (uint8_t)sizeof(void*), 0, PLUTINO_TAG_OS, PLUTINO_TAG_ARCH, \
      PLUTINO_TAG_LIBC, NAME, VERSION, PLUTINO_CONTRACT_VERSION, PLUTINO_TAG_RUNTIME, {0}}

/* PLUTINO_DESCRIPTOR_ENTRY(kind, name, version, count, source, sink, functions): the
** descriptor and the entry symbol alone (for test fixtures; plugins use PLUTINO_DECLARE_*). */
#define PLUTINO_DESCRIPTOR_ENTRY(KIND, NAME, VERSION, COUNT, SOURCE, SINK, FUNCTIONS) \
  PLUTINO_DESCRIPTOR_ENTRY_(KIND, NAME, VERSION, COUNT, SOURCE, SINK, FUNCTIONS, (void)0)

/* The entry takes the tag's address in an empty asm statement: a reference the optimizer
** cannot remove and the linker follows from the exported entry to the tag's section. */
#define PLUTINO_KEEP_TAG_() __asm__ __volatile__("" : : "r"(&plutino_tag_record))

#define PLUTINO_DESCRIPTOR_ENTRY_(KIND, NAME, VERSION, COUNT, SOURCE, SINK, FUNCTIONS, KEEP) \
  static const plutino_plugin plutino_descriptor = {                                        \
      sizeof(plutino_plugin), PLUTINO_ABI_MAJOR, PLUTINO_TARGET_ABI_MINOR, (KIND), (COUNT),  \
      NAME, VERSION, PLUTINO_CONTRACT_VERSION, (SOURCE), (SINK), (FUNCTIONS)};               \
  PLUTINO_EXTERN_C PLUTINO_EXPORT const plutino_plugin* plutino_plugin_v1(void) {            \
    KEEP;                                                                                    \
    return &plutino_descriptor;                                                              \
  }

#define PLUTINO_DECLARE_(KIND, NAME, VERSION, COUNT, SOURCE, SINK, FUNCTIONS)                \
  PLUTINO_TAG_RECORD(KIND, NAME, VERSION, PLUTINO_ABI_MAJOR, PLUTINO_TARGET_ABI_MINOR);       \
  PLUTINO_DESCRIPTOR_ENTRY_(KIND, NAME, VERSION, COUNT, SOURCE, SINK, FUNCTIONS, PLUTINO_KEEP_TAG_())

/* Declare a source plugin. Put it once, at file scope, at the end of the plugin's source:
**     static const plutino_source_api random_source = { sizeof(plutino_source_api), ... };
**     PLUTINO_DECLARE_SOURCE("random", "1.0.0", &random_source)
** NAME and VERSION must be string literals. */
#define PLUTINO_DECLARE_SOURCE(NAME, VERSION, SOURCE_API) \
  PLUTINO_DECLARE_(PLUTINO_KIND_SOURCE, NAME, VERSION, 0, SOURCE_API, NULL, NULL)

/* Declare a sink plugin:  PLUTINO_DECLARE_SINK("file", "1.0.0", &file_sink) */
#define PLUTINO_DECLARE_SINK(NAME, VERSION, SINK_API) \
  PLUTINO_DECLARE_(PLUTINO_KIND_SINK, NAME, VERSION, 0, NULL, SINK_API, NULL)

/* Declare a function library. FUNCTION_ARRAY is a static array of pointers:
**     static const plutino_function* const echo_functions[] = {&echo_fn, &count_plus_one_fn};
**     PLUTINO_DECLARE_FUNCTIONS("echo", "1.0.0", echo_functions)                           */
#define PLUTINO_DECLARE_FUNCTIONS(NAME, VERSION, FUNCTION_ARRAY)                            \
  PLUTINO_DECLARE_(PLUTINO_KIND_FUNCTION, NAME, VERSION,                                   \
                   (uint32_t)(sizeof(FUNCTION_ARRAY) / sizeof((FUNCTION_ARRAY)[0])), NULL, \
                   NULL, FUNCTION_ARRAY)

#ifdef __cplusplus
}
#endif

#endif /* PLUTINO_H */
