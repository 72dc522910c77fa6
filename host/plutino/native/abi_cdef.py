"""The ABI this host was built for, generated from plutino.h by tools/gen_host_abi.py: do not edit."""

ABI_MAJOR = 1
ABI_MINOR = 1
CONTRACT_VERSION = '1.1.0'

CDEF = r"""
typedef int32_t plutino_status;
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
"""
