// plutino.rs -- the Plutino native plugin contract (ABI 1.0, plutino-contract 1.1.0) for Rust.
//
// One dependency-free source file: #[repr(C)] bindings of every struct of plutino.h, its
// constants, the declaration macros that write the ABI tag and the entry symbol, and a few safe
// helpers (errors, reading int64/float64/utf8 arguments, building results). plutino.h stays the
// specification; this file is a transcription of it, checked field by field against the C
// compiler by the contract's tests. Builds with rustc 1.63 or newer, edition 2021, no crates.
//
// Use it as a module named `plutino` at the root of a `crate-type = ["cdylib"]` crate:
//
//     #[macro_use]
//     mod plutino {
//         include!(concat!(env!("PLUTINO_RUST_DIR", "set PLUTINO_RUST_DIR to the output of \
//                  `python -m plutino_contract --rust-dir`"), "/plutino.rs"));
//     }
//
// (or copy this file to src/plutino.rs and write `#[macro_use] mod plutino;`). The macros
// refer to `crate::plutino::...`, so the module must have that name and sit at the crate root.
// The file has no inner attributes or `//!` comments, so that include! accepts it.
//
// Then, once, at the end of the crate:
//
//     plutino_declare_functions!("strings", "1.0.0", [&REVERSE, &SCALE]);
//     plutino_declare_source!("ticks", "1.0.0", &TICKS_SOURCE);
//     plutino_declare_sink!("printer", "1.0.0", &PRINTER_SINK);
//
// (without a version, the macro records $PLUTINO_PLUGIN_VERSION as set at build time by
// plutino_add_rust_plugin(... VERSION x), else the crate's version from Cargo.toml). A macro
// writes the 192-byte tag into the ELF section ".plutino_tag" (8-byte aligned, #[used], not
// exported), the descriptor, and the only exported symbol, `plutino_plugin_v1`, which reads
// the tag so that no linker setting (--gc-sections, LTO) can drop it.

use std::ffi::c_void;
use std::os::raw::c_char;

// ------------------------------------------------------------------------ versions and names

/// The ABI this file describes (PLUTINO_ABI_MAJOR / PLUTINO_ABI_MINOR).
pub const ABI_MAJOR: u16 = 1;
pub const ABI_MINOR: u16 = 1;
/// The plutino-contract release this file ships in (PLUTINO_CONTRACT_VERSION).
pub const CONTRACT_VERSION: &str = "1.1.0";
pub const ENTRY_SYMBOL: &str = "plutino_plugin_v1";
pub const TAG_SECTION: &str = ".plutino_tag";
pub const TAG_MAGIC: [u8; 8] = *b"PLUTINO\0";
pub const TAG_FORMAT: u16 = 1;
pub const TAG_SIZE: usize = 192;

pub const KIND_SOURCE: u8 = 1;
pub const KIND_SINK: u8 = 2;
pub const KIND_FUNCTION: u8 = 3;

/// plutino_status: every fallible call returns one of the constants below.
pub type Status = i32;
pub const OK: Status = 0;
pub const ERROR: Status = 1;
pub const INVALID: Status = 2;
pub const IO: Status = 3;
pub const NOMEM: Status = 4;
pub const AGAIN: Status = 5;
pub const EOF: Status = 6;
pub const UNSUPPORTED: Status = 7;

pub const LOG_DEBUG: i32 = 10;
pub const LOG_INFO: i32 = 20;
pub const LOG_WARN: i32 = 30;
pub const LOG_ERROR: i32 = 40;

pub const CONN_CONNECTED: i32 = 0;
pub const CONN_CONNECTING: i32 = 1;
pub const CONN_DISCONNECTED: i32 = 2;

pub const FN_AGGREGATE: u32 = 1;
pub const FN_VOLATILE: u32 = 2;

pub const ARROW_FLAG_DICTIONARY_ORDERED: i64 = 1;
pub const ARROW_FLAG_NULLABLE: i64 = 2;
pub const ARROW_FLAG_MAP_KEYS_SORTED: i64 = 4;

// ------------------------------------------------------------------------ the Arrow C Data Interface

#[repr(C)]
pub struct ArrowSchema {
    pub format: *const c_char,
    pub name: *const c_char,
    pub metadata: *const c_char,
    pub flags: i64,
    pub n_children: i64,
    pub children: *mut *mut ArrowSchema,
    pub dictionary: *mut ArrowSchema,
    pub release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    pub private_data: *mut c_void,
}

#[repr(C)]
pub struct ArrowArray {
    pub length: i64,
    pub null_count: i64,
    pub offset: i64,
    pub n_buffers: i64,
    pub n_children: i64,
    pub buffers: *mut *const c_void,
    pub children: *mut *mut ArrowArray,
    pub dictionary: *mut ArrowArray,
    pub release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    pub private_data: *mut c_void,
}

// ------------------------------------------------------------------------ the ABI tag

/// plutino_tag: 192 bytes, no padding. Written by the plutino_declare_* macros; never by hand.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Tag {
    pub magic: [u8; 8],
    pub tag_size: u16,
    pub tag_format: u16,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub kind: u8,
    pub byte_order: u8,
    pub pointer_size: u8,
    pub reserved0: u8,
    pub os: [u8; 12],
    pub arch: [u8; 16],
    pub libc: [u8; 16],
    pub name: [u8; 64],
    pub plugin_version: [u8; 32],
    pub contract_version: [u8; 16],
    pub runtime: [u8; 12],
    pub reserved: [u8; 4],
}

/// The tag as placed in its section: aligned to 8 bytes, as C's `aligned(8)` places it.
#[repr(C, align(8))]
pub struct TagRecord(pub Tag);

// ABI 1 plugins are ELF shared objects; the host has no reader for Mach-O or PE files.
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "windows"))]
compile_error!("plutino ABI 1 plugins are ELF shared objects (Linux); this target does not produce ELF");

/// PLUTINO_TAG_OS / _ARCH / _LIBC / _BYTE_ORDER of plutino.h, from the target's cfg.
pub const TAG_OS: &str = if cfg!(target_os = "linux") { "linux" } else { "unknown" };
pub const TAG_ARCH: &str = if cfg!(target_arch = "x86_64") {
    "x86_64"
} else if cfg!(target_arch = "aarch64") {
    "aarch64"
} else if cfg!(target_arch = "x86") {
    "i386"
} else if cfg!(target_arch = "arm") {
    "arm"
} else if cfg!(target_arch = "riscv64") {
    "riscv64"
} else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
    "ppc64le"
} else if cfg!(target_arch = "s390x") {
    "s390x"
} else {
    "unknown"
};
pub const TAG_LIBC: &str = if cfg!(all(target_os = "linux", target_env = "gnu")) {
    "glibc"
} else if cfg!(target_os = "linux") {
    "musl"
} else {
    "none"
};
pub const TAG_BYTE_ORDER: u8 = if cfg!(target_endian = "big") { 2 } else { 1 };

/// `text` NUL-padded into N bytes (a compile error when it does not fit with its NUL).
const fn padded<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    if bytes.len() >= N {
        panic!("plutino: a tag text field (os, arch, libc, contract version) does not fit");
    }
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Whether `name` is a valid plugin name: letters, digits, '-', '_', 1 to 63 bytes.
pub const fn valid_plugin_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 63 {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

impl Tag {
    /// The tag of a plugin of `kind` built for ABI 1.`abi_minor` on this target (what
    /// PLUTINO_TAG_RECORD writes in C). Evaluated at compile time by the declare macros.
    pub const fn new(kind: u8, name: &str, version: &str, abi_minor: u16) -> Tag {
        if !valid_plugin_name(name) {
            panic!("plutino: a plugin name is 1 to 63 letters, digits, '-' or '_'");
        }
        if version.is_empty() || version.len() > 31 {
            panic!("plutino: a plugin version is 1 to 31 bytes, e.g. \"1.0.0\"");
        }
        if abi_minor > ABI_MINOR {
            panic!("plutino: the target ABI minor is newer than this plutino.rs");
        }
        Tag {
            magic: TAG_MAGIC,
            tag_size: TAG_SIZE as u16,
            tag_format: TAG_FORMAT,
            abi_major: ABI_MAJOR,
            abi_minor,
            kind,
            byte_order: TAG_BYTE_ORDER,
            pointer_size: std::mem::size_of::<*const u8>() as u8,
            reserved0: 0,
            os: padded::<12>(TAG_OS),
            arch: padded::<16>(TAG_ARCH),
            libc: padded::<16>(TAG_LIBC),
            name: padded::<64>(name),
            plugin_version: padded::<32>(version),
            contract_version: padded::<16>(CONTRACT_VERSION),
            runtime: [0; 12], // "": a Rust plugin needs no runtime besides libc
            reserved: [0; 4],
        }
    }
}

// ------------------------------------------------------------------------ host services

#[repr(C)]
pub struct HostApi {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub host_version: *const c_char,
    pub log: Option<unsafe extern "C" fn(ctx: *mut Context, level: i32, message: *const c_char)>,
    pub alloc: Option<unsafe extern "C" fn(size: usize) -> *mut c_void>,
    pub free: Option<unsafe extern "C" fn(ptr: *mut c_void)>,
}

#[repr(C)]
pub struct Context {
    pub struct_size: u32,
    pub error_capacity: u32,
    pub error: *mut c_char,
    pub host: *const HostApi,
    pub host_data: *mut c_void,
    pub plugin_name: *const c_char,
    pub rule_id: *const c_char,
    pub op_id: *const c_char,
    pub instance_id: i64,
    pub data_dir: *const c_char,
}

// ------------------------------------------------------------------------ sources and sinks

#[repr(C)]
pub struct SourceApi {
    pub struct_size: u32,
    pub create: Option<
        unsafe extern "C" fn(ctx: *mut Context, config_json: *const c_char, out_instance: *mut *mut c_void) -> Status,
    >,
    pub schema: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void, out_schema: *mut ArrowSchema) -> Status>,
    pub open: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void) -> Status>,
    pub next: Option<
        unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void, timeout_us: i64, out_batch: *mut ArrowArray) -> Status,
    >,
    pub status: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void) -> i32>,
    pub close: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void)>,
    /// Since ABI 1.1: at-least-once acknowledgement of batch `seq` (see plutino.h).
    pub ack: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void, seq: i64) -> Status>,
}

impl SourceApi {
    /// Every callback unset and struct_size filled in. Write a source's table as
    /// `SourceApi { create: Some(..), schema: Some(..), next: Some(..), close: Some(..), ..SourceApi::EMPTY }`
    /// so the fields a later ABI minor appends need no change to it (a Rust struct literal must
    /// name every field otherwise).
    pub const EMPTY: SourceApi = SourceApi {
        struct_size: core::mem::size_of::<SourceApi>() as u32,
        create: None,
        schema: None,
        open: None,
        next: None,
        status: None,
        close: None,
        ack: None,
    };
}

#[repr(C)]
pub struct SinkApi {
    pub struct_size: u32,
    pub create: Option<
        unsafe extern "C" fn(ctx: *mut Context, config_json: *const c_char, out_instance: *mut *mut c_void) -> Status,
    >,
    pub open: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void) -> Status>,
    pub write: Option<
        unsafe extern "C" fn(
            ctx: *mut Context,
            instance: *mut c_void,
            schema: *const ArrowSchema,
            batch: *const ArrowArray,
        ) -> Status,
    >,
    pub flush: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void) -> Status>,
    pub status: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void) -> i32>,
    pub close: Option<unsafe extern "C" fn(ctx: *mut Context, instance: *mut c_void)>,
}

impl SinkApi {
    /// Every callback unset and struct_size filled in: `SinkApi { create: Some(..), .., ..SinkApi::EMPTY }`.
    pub const EMPTY: SinkApi = SinkApi {
        struct_size: core::mem::size_of::<SinkApi>() as u32,
        create: None,
        open: None,
        write: None,
        flush: None,
        status: None,
        close: None,
    };
}

// ------------------------------------------------------------------------ functions

pub type ValidateFn = unsafe extern "C" fn(
    ctx: *mut Context,
    nargs: i32,
    arg_types: *const *const ArrowSchema,
    out_type: *mut ArrowSchema,
) -> Status;
pub type CreateFn = unsafe extern "C" fn(ctx: *mut Context, out_state: *mut *mut c_void) -> Status;
pub type DestroyFn = unsafe extern "C" fn(ctx: *mut Context, state: *mut c_void);
pub type CallFn = unsafe extern "C" fn(
    ctx: *mut Context,
    state: *mut c_void,
    nargs: i32,
    args: *const *const ArrowArray,
    arg_types: *const *const ArrowSchema,
    length: i64,
    out: *mut ArrowArray,
    out_type: *mut ArrowSchema,
) -> Status;
pub type AggregateFn = unsafe extern "C" fn(
    ctx: *mut Context,
    state: *mut c_void,
    nargs: i32,
    args: *const *const ArrowArray,
    arg_types: *const *const ArrowSchema,
    length: i64,
    group_ids: *const i32,
    ngroups: i64,
    out: *mut ArrowArray,
    out_type: *mut ArrowSchema,
) -> Status;

#[repr(C)]
pub struct Function {
    pub struct_size: u32,
    pub flags: u32,
    pub name: *const c_char,
    pub min_args: i32,
    pub max_args: i32,
    pub validate: Option<ValidateFn>,
    pub create: Option<CreateFn>,
    pub destroy: Option<DestroyFn>,
    pub call: Option<CallFn>,
    pub aggregate: Option<AggregateFn>,
}

// A Function is immutable static data (a name literal and code pointers): safe to share.
unsafe impl Sync for Function {}

/// `name` as a NUL-terminated C string; a compile error unless it ends in "\0" and is a valid
/// SQL function name (letters, digits, '_').
const fn function_name(name: &'static str) -> *const c_char {
    let b = name.as_bytes();
    if b.len() < 2 || b[b.len() - 1] != 0 {
        panic!("plutino: a function name is a string literal ending in \\0, e.g. \"my_fn\\0\"");
    }
    let mut i = 0;
    while i < b.len() - 1 {
        if !(b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            panic!("plutino: a function name holds only letters, digits and '_'");
        }
        i += 1;
    }
    name.as_ptr() as *const c_char
}

impl Function {
    /// A scalar function: `call` computes one result row per input row.
    /// `name` ends in "\0": `Function::scalar("rs_reverse\0", 1, 1, reverse_call)`.
    pub const fn scalar(name: &'static str, min_args: i32, max_args: i32, call: CallFn) -> Function {
        Function {
            struct_size: std::mem::size_of::<Function>() as u32,
            flags: 0,
            name: function_name(name),
            min_args,
            max_args,
            validate: None,
            create: None,
            destroy: None,
            call: Some(call),
            aggregate: None,
        }
    }

    /// An aggregate function: `aggregate` computes one result row per group.
    pub const fn aggregate(name: &'static str, min_args: i32, max_args: i32, aggregate: AggregateFn) -> Function {
        Function {
            struct_size: std::mem::size_of::<Function>() as u32,
            flags: FN_AGGREGATE,
            name: function_name(name),
            min_args,
            max_args,
            validate: None,
            create: None,
            destroy: None,
            call: None,
            aggregate: Some(aggregate),
        }
    }

    /// The same function with a validate() callback (argument types -> result type).
    pub const fn validate(self, validate: ValidateFn) -> Function {
        Function { validate: Some(validate), ..self }
    }

    /// The same function with per-use state: create() and destroy().
    pub const fn state(self, create: CreateFn, destroy: DestroyFn) -> Function {
        Function { create: Some(create), destroy: Some(destroy), ..self }
    }

    /// The same function marked PLUTINO_FN_VOLATILE (random, time: never constant-folded).
    pub const fn volatile(self) -> Function {
        Function { flags: self.flags | FN_VOLATILE, ..self }
    }
}

// ------------------------------------------------------------------------ the descriptor

#[repr(C)]
pub struct Plugin {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub kind: u32,
    pub function_count: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub contract_version: *const c_char,
    pub source: *const SourceApi,
    pub sink: *const SinkApi,
    pub functions: *const *const Function,
}

// The descriptor is immutable static data pointing at other static data.
unsafe impl Sync for Plugin {}

/// The entry symbol's type (plutino_entry_fn).
pub type EntryFn = unsafe extern "C" fn() -> *const Plugin;

impl Plugin {
    /// The descriptor the declare macros write (PLUTINO_DESCRIPTOR_ENTRY in C). Its name,
    /// version and contract version point into the tag, so the two always agree.
    pub const fn new(
        kind: u8,
        tag: &'static TagRecord,
        source: *const SourceApi,
        sink: *const SinkApi,
        functions: *const *const Function,
        function_count: usize,
    ) -> Plugin {
        Plugin {
            struct_size: std::mem::size_of::<Plugin>() as u32,
            abi_major: ABI_MAJOR,
            abi_minor: tag.0.abi_minor,
            kind: kind as u32,
            function_count: function_count as u32,
            name: &tag.0.name as *const [u8; 64] as *const c_char,
            version: &tag.0.plugin_version as *const [u8; 32] as *const c_char,
            contract_version: &tag.0.contract_version as *const [u8; 16] as *const c_char,
            source,
            sink,
            functions,
        }
    }
}

/// The version a declare macro records when given none: $PLUTINO_PLUGIN_VERSION at build time
/// (set by plutino_add_rust_plugin's VERSION), else the crate's version from Cargo.toml.
pub const fn default_version(from_env: Option<&'static str>, crate_version: &'static str) -> &'static str {
    match from_env {
        Some(v) if !v.is_empty() => v,
        _ => crate_version,
    }
}

// The layouts of plutino.h on 64-bit targets (the contract's tests compare every field offset
// with the C compiler's; these catch a slip at compile time).
const _: () = assert!(std::mem::size_of::<Tag>() == TAG_SIZE);
const _: () = assert!(std::mem::size_of::<TagRecord>() == TAG_SIZE);
const _: () = assert!(std::mem::align_of::<TagRecord>() == 8);
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<ArrowSchema>() == 72);
    assert!(std::mem::size_of::<ArrowArray>() == 80);
    assert!(std::mem::size_of::<HostApi>() == 40);
    assert!(std::mem::size_of::<Context>() == 72);
    assert!(std::mem::size_of::<SourceApi>() == 64);
    assert!(std::mem::size_of::<SinkApi>() == 56);
    assert!(std::mem::size_of::<Function>() == 64);
    assert!(std::mem::size_of::<Plugin>() == 64);
};

// The macros below are plain macro_rules! in textual scope: `#[macro_use]` on the module makes
// them visible after it. (#[macro_export] would not do: macros exported from include!d code
// cannot be named by path.) Each refers to the bindings as `$crate::plutino::...`.

/// PLUTINO_HAS_FIELD: whether the struct behind `ptr` (one that starts with struct_size,
/// written by the other side) is large enough to hold `field`:
/// `if plutino_has_field!(ctx.host, HostApi, free) { ... }`. A null pointer has no fields.
#[allow(unused_macros)]
macro_rules! plutino_has_field {
    ($ptr:expr, $ty:ty, $field:ident) => {{
        let (offset, size) = plutino_field_extent!($ty, $field);
        let p: *const $ty = $ptr;
        !p.is_null() && unsafe { (*p).struct_size } as usize >= offset + size
    }};
}

/// (offset, size) of a field of a #[repr(C)] struct, without constructing one (offset_of! is
/// newer than rustc 1.63).
#[allow(unused_macros)]
macro_rules! plutino_field_extent {
    ($ty:ty, $field:ident) => {{
        let probe = ::std::mem::MaybeUninit::<$ty>::uninit();
        let base = probe.as_ptr();
        // addr_of! takes the field's address without reading the uninitialised value.
        let field = unsafe { ::std::ptr::addr_of!((*base).$field) };
        (field as usize - base as usize, $crate::plutino::size_of_pointee(field))
    }};
}

#[doc(hidden)]
pub const fn size_of_pointee<T>(_: *const T) -> usize {
    std::mem::size_of::<T>()
}

// ------------------------------------------------------------------------ declaring a plugin

/// The version recorded when a declare macro is given none (see [`default_version`]).
#[allow(unused_macros)]
macro_rules! plutino_default_version {
    () => {
        $crate::plutino::default_version(option_env!("PLUTINO_PLUGIN_VERSION"), env!("CARGO_PKG_VERSION"))
    };
}

/// The tag, the descriptor and the entry symbol of a plugin (the declare macros' common part).
#[allow(unused_macros)]
macro_rules! plutino_declare_ {
    ($kind:expr, $name:expr, $version:expr, $abi_minor:expr, $source:expr, $sink:expr, $functions:expr, $count:expr) => {
        // The tag: in its section, 8-byte aligned, kept by #[used]; not exported (no #[no_mangle]).
        #[used]
        #[link_section = ".plutino_tag"]
        static PLUTINO_TAG_RECORD: $crate::plutino::TagRecord =
            $crate::plutino::TagRecord($crate::plutino::Tag::new($kind, $name, $version, $abi_minor));

        static PLUTINO_DESCRIPTOR: $crate::plutino::Plugin = $crate::plutino::Plugin::new(
            $kind,
            &PLUTINO_TAG_RECORD,
            $source,
            $sink,
            $functions,
            $count,
        );

        /// The plugin's entry symbol, the only symbol it exports.
        #[no_mangle]
        pub extern "C" fn plutino_plugin_v1() -> *const $crate::plutino::Plugin {
            // A volatile read of the tag: a reference from exported (hence kept) code to the
            // tag's section, so --gc-sections and LTO keep the section. #[used] alone does not
            // with every rustc: 1.63 does not mark the section SHF_GNU_RETAIN.
            unsafe { ::std::ptr::read_volatile(&PLUTINO_TAG_RECORD.0.magic[0]) };
            &PLUTINO_DESCRIPTOR
        }
    };
}

/// Declare a function library, once per crate:
/// `plutino_declare_functions!("strings", "1.0.0", [&REVERSE, &SUM]);`. Without the version,
/// [`default_version`] is recorded; `, abi_minor = N` after the list targets an
/// older ABI minor (PLUTINO_TARGET_ABI_MINOR in C).
#[allow(unused_macros)]
macro_rules! plutino_declare_functions {
    ($name:expr, [$($function:expr),+ $(,)?]) => {
        plutino_declare_functions!($name, plutino_default_version!(), [$($function),+]);
    };
    ($name:expr, $version:expr, [$($function:expr),+ $(,)?]) => {
        plutino_declare_functions!($name, $version, [$($function),+], abi_minor = $crate::plutino::ABI_MINOR);
    };
    ($name:expr, $version:expr, [$($function:expr),+ $(,)?], abi_minor = $abi_minor:expr) => {
        const PLUTINO_FUNCTION_COUNT: usize = [$(stringify!($function)),+].len();
        static PLUTINO_FUNCTIONS: [&'static $crate::plutino::Function; PLUTINO_FUNCTION_COUNT] = [$($function),+];
        plutino_declare_!(
            $crate::plutino::KIND_FUNCTION, $name, $version, $abi_minor,
            ::std::ptr::null(), ::std::ptr::null(),
            &PLUTINO_FUNCTIONS as *const [&'static $crate::plutino::Function; PLUTINO_FUNCTION_COUNT]
                as *const *const $crate::plutino::Function,
            PLUTINO_FUNCTION_COUNT
        );
    };
}

/// Declare a source plugin: `plutino_declare_source!("ticks", "1.0.0", &TICKS);` where TICKS
/// is a `static SourceApi`.
#[allow(unused_macros)]
macro_rules! plutino_declare_source {
    ($name:expr, $source:expr) => {
        plutino_declare_source!($name, plutino_default_version!(), $source);
    };
    ($name:expr, $version:expr, $source:expr) => {
        plutino_declare_source!($name, $version, $source, abi_minor = $crate::plutino::ABI_MINOR);
    };
    ($name:expr, $version:expr, $source:expr, abi_minor = $abi_minor:expr) => {
        plutino_declare_!(
            $crate::plutino::KIND_SOURCE, $name, $version, $abi_minor,
            $source as *const $crate::plutino::SourceApi, ::std::ptr::null(), ::std::ptr::null(), 0
        );
    };
}

/// Declare a sink plugin: `plutino_declare_sink!("printer", "1.0.0", &PRINTER);` where
/// PRINTER is a `static SinkApi`.
#[allow(unused_macros)]
macro_rules! plutino_declare_sink {
    ($name:expr, $sink:expr) => {
        plutino_declare_sink!($name, plutino_default_version!(), $sink);
    };
    ($name:expr, $version:expr, $sink:expr) => {
        plutino_declare_sink!($name, $version, $sink, abi_minor = $crate::plutino::ABI_MINOR);
    };
    ($name:expr, $version:expr, $sink:expr, abi_minor = $abi_minor:expr) => {
        plutino_declare_!(
            $crate::plutino::KIND_SINK, $name, $version, $abi_minor,
            ::std::ptr::null(), $sink as *const $crate::plutino::SinkApi, ::std::ptr::null(), 0
        );
    };
}

// ------------------------------------------------------------------------ helpers: the context

/// A borrowed view of a call's context: the error slot and the host's log.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    raw: Option<&'a Context>,
}

impl<'a> Ctx<'a> {
    /// # Safety
    /// `ctx` is the context the host passed to the running call (or null).
    pub unsafe fn new(ctx: *mut Context) -> Ctx<'a> {
        Ctx { raw: ctx.as_ref() }
    }

    /// Write `message` into the instance's error slot (cut at a character boundary to fit)
    /// and return PLUTINO_ERROR: `return ctx.set_error("...")`.
    pub fn set_error(&self, message: &str) -> Status {
        self.fail(ERROR, message)
    }

    /// Write `message` into the error slot and return `status`:
    /// `return ctx.fail(INVALID, &format!("factor must be > 0, got {}", f))`.
    pub fn fail(&self, status: Status, message: &str) -> Status {
        if let Some(ctx) = self.raw {
            if !ctx.error.is_null() && ctx.error_capacity > 0 {
                let mut n = message.len().min(ctx.error_capacity as usize - 1);
                while !message.is_char_boundary(n) {
                    n -= 1;
                }
                // The buffer is the host's, error_capacity bytes, valid during the call.
                unsafe {
                    std::ptr::copy_nonoverlapping(message.as_ptr(), ctx.error as *mut u8, n);
                    *ctx.error.add(n) = 0;
                }
            }
        }
        status
    }

    /// Write `message` to the host's log at `level` (LOG_*). NUL bytes in it become spaces.
    pub fn log(&self, level: i32, message: &str) {
        let ctx = match self.raw {
            Some(ctx) => ctx,
            None => return,
        };
        let log = match unsafe { ctx.host.as_ref() }.and_then(|h| h.log) {
            Some(log) => log,
            None => return,
        };
        let mut bytes: Vec<u8> = message.bytes().map(|b| if b == 0 { b' ' } else { b }).collect();
        bytes.push(0);
        unsafe { log(ctx as *const Context as *mut Context, level, bytes.as_ptr() as *const c_char) };
    }

    /// The host's ABI (major, minor), to decide which host fields exist; (0, 0) without a host.
    pub fn host_abi(&self) -> (u16, u16) {
        match self.raw.and_then(|c| unsafe { c.host.as_ref() }) {
            Some(h) => (h.abi_major, h.abi_minor),
            None => (0, 0),
        }
    }
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
}

/// Run `body` and return its status; a panic becomes PLUTINO_ERROR with the panic's message in
/// the error slot, instead of unwinding into the host (undefined behaviour) or aborting it. The
/// first call installs a panic hook for this plugin's copy of std that records the message
/// rather than printing it (plutino.h: a plugin never prints to stderr).
pub fn guard<F: FnOnce() -> Status>(ctx: Ctx<'_>, body: F) -> Status {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let what = if let Some(s) = info.payload().downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic".to_string()
            };
            let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{}{}", what, at)));
        }));
    });
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(status) => status,
        Err(_) => {
            let what = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "a panic".to_string());
            ctx.set_error(&format!("the plugin panicked: {}; this is a bug in the plugin", what))
        }
    }
}

// ------------------------------------------------------------------------ helpers: arguments

/// The Arrow types the helpers read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Int64,
    Float64,
    Utf8,
    LargeUtf8,
    Bool,
}

impl DataType {
    /// The type of an Arrow format string ("l", "g", "u", "U", "b"); None for any other.
    pub fn from_format(format: &str) -> Option<DataType> {
        match format {
            "l" => Some(DataType::Int64),
            "g" => Some(DataType::Float64),
            "u" => Some(DataType::Utf8),
            "U" => Some(DataType::LargeUtf8),
            "b" => Some(DataType::Bool),
            _ => None,
        }
    }

    /// The Arrow format string, NUL-terminated.
    pub fn format_c(self) -> &'static str {
        match self {
            DataType::Int64 => "l\0",
            DataType::Float64 => "g\0",
            DataType::Utf8 => "u\0",
            DataType::LargeUtf8 => "U\0",
            DataType::Bool => "b\0",
        }
    }

    /// Strings, in either offset width.
    pub fn is_string(self) -> bool {
        matches!(self, DataType::Utf8 | DataType::LargeUtf8)
    }
}

/// The format string of a borrowed schema ("" when absent or not UTF-8).
pub fn format_of(schema: &ArrowSchema) -> &str {
    if schema.format.is_null() {
        return "";
    }
    unsafe { std::ffi::CStr::from_ptr(schema.format) }.to_str().unwrap_or("")
}

/// A readable name of an Arrow format, for messages ("int64", "string", ...).
pub fn type_name(format: &str) -> &str {
    match format {
        "l" => "int64",
        "g" => "float64",
        "u" => "string",
        "U" => "large string",
        "b" => "bool",
        "i" => "int32",
        "f" => "float32",
        "z" => "binary",
        "n" => "null",
        "+l" => "list",
        "+s" => "struct",
        "tsu:" => "timestamp[us]",
        _ => format,
    }
}

/// Write the result type `data_type` into `out` (MOVED to the host; static strings, so its
/// release only marks it released). Used by validate() and, optionally, call().
///
/// # Safety
/// `out` is null or points to an ArrowSchema the host handed over for writing.
pub unsafe fn write_type(out: *mut ArrowSchema, data_type: DataType) -> Status {
    unsafe extern "C" fn release(schema: *mut ArrowSchema) {
        if let Some(s) = schema.as_mut() {
            s.release = None;
        }
    }
    if let Some(out) = out.as_mut() {
        *out = ArrowSchema {
            format: data_type.format_c().as_ptr() as *const c_char,
            name: "\0".as_ptr() as *const c_char,
            metadata: std::ptr::null(),
            flags: ARROW_FLAG_NULLABLE,
            n_children: 0,
            children: std::ptr::null_mut(),
            dictionary: std::ptr::null_mut(),
            release: Some(release),
            private_data: std::ptr::null_mut(),
        };
    }
    OK
}

/// The argument types validate() receives (borrowed).
pub struct ArgTypes<'a> {
    types: &'a [*const ArrowSchema],
}

impl<'a> ArgTypes<'a> {
    /// # Safety
    /// `types` points to `nargs` valid schemas, borrowed for the call (as the host passes them).
    pub unsafe fn new(nargs: i32, types: *const *const ArrowSchema) -> ArgTypes<'a> {
        let n = if types.is_null() || nargs <= 0 { 0 } else { nargs as usize };
        ArgTypes { types: if n == 0 { &[] } else { std::slice::from_raw_parts(types, n) } }
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }


    /// The Arrow format of argument i ("" past the end).
    pub fn format(&self, i: usize) -> &'a str {
        match self.types.get(i).and_then(|p| unsafe { p.as_ref() }) {
            Some(schema) => format_of(schema),
            None => "",
        }
    }

    /// The type of argument i, when it is one the helpers know.
    pub fn data_type(&self, i: usize) -> Option<DataType> {
        DataType::from_format(self.format(i))
    }

    /// Whether argument i is a constant in the SQL (it then arrives as one row).
    pub fn is_constant(&self, i: usize) -> bool {
        match self.types.get(i).and_then(|p| unsafe { p.as_ref() }) {
            Some(s) => s.flags & ARROW_FLAG_NULLABLE == 0 && !s.name.is_null()
                && unsafe { std::ffi::CStr::from_ptr(s.name) }.to_bytes() == b"const",
            None => false,
        }
    }
}

/// The arguments call() or aggregate() receives: arrays and their types (borrowed).
pub struct Args<'a> {
    arrays: &'a [*const ArrowArray],
    pub types: ArgTypes<'a>,
}

impl<'a> Args<'a> {
    /// # Safety
    /// `args` and `types` point to `nargs` valid arrays and schemas, borrowed for the call.
    pub unsafe fn new(nargs: i32, args: *const *const ArrowArray, types: *const *const ArrowSchema) -> Args<'a> {
        let n = if args.is_null() || nargs <= 0 { 0 } else { nargs as usize };
        Args {
            arrays: if n == 0 { &[] } else { std::slice::from_raw_parts(args, n) },
            types: ArgTypes::new(nargs, types),
        }
    }

    pub fn len(&self) -> usize {
        self.arrays.len()
    }


    /// The raw array of argument i.
    pub fn array(&self, i: usize) -> Option<&'a ArrowArray> {
        self.arrays.get(i).and_then(|p| unsafe { p.as_ref() })
    }

    /// Argument i as int64 values; None unless its format is "l".
    pub fn int64(&self, i: usize) -> Option<Values<'a, i64>> {
        match self.types.data_type(i) {
            Some(DataType::Int64) => self.array(i).map(|a| unsafe { Values::new(a) }),
            _ => None,
        }
    }

    /// Argument i as float64 values; None unless its format is "g".
    pub fn float64(&self, i: usize) -> Option<Values<'a, f64>> {
        match self.types.data_type(i) {
            Some(DataType::Float64) => self.array(i).map(|a| unsafe { Values::new(a) }),
            _ => None,
        }
    }

    /// Argument i as numbers (int64 or float64, read as f64); None for other types.
    pub fn number(&self, i: usize) -> Option<Number<'a>> {
        match self.types.data_type(i) {
            Some(DataType::Int64) => self.int64(i).map(Number::Int64),
            Some(DataType::Float64) => self.float64(i).map(Number::Float64),
            _ => None,
        }
    }

    /// Argument i as strings, "u" (32-bit offsets) or "U" (64-bit); None for other types.
    pub fn utf8(&self, i: usize) -> Option<Strings<'a>> {
        let large = match self.types.data_type(i) {
            Some(DataType::Utf8) => false,
            Some(DataType::LargeUtf8) => true,
            _ => return None,
        };
        self.array(i).map(|a| unsafe { Strings::new(a, large) })
    }
}

/// The validity bitmap of a borrowed array.
#[derive(Clone, Copy)]
struct Validity<'a> {
    bits: Option<&'a [u8]>,
    offset: usize,
}

impl<'a> Validity<'a> {
    unsafe fn new(a: &'a ArrowArray) -> Validity<'a> {
        let offset = a.offset.max(0) as usize;
        let length = a.length.max(0) as usize;
        let bits = if a.null_count == 0 || a.n_buffers < 1 || a.buffers.is_null() || (*a.buffers).is_null() {
            None
        } else {
            Some(std::slice::from_raw_parts(*a.buffers as *const u8, (offset + length + 7) / 8))
        };
        Validity { bits, offset }
    }

    fn is_valid(&self, row: usize) -> bool {
        match self.bits {
            None => true,
            Some(bits) => {
                let j = row + self.offset;
                bits[j / 8] >> (j % 8) & 1 == 1
            }
        }
    }
}

/// The row of an argument to read for result row `i`: `i`, or 0 for a constant (one row).
fn arg_row(length: usize, i: usize) -> usize {
    if length == 1 {
        0
    } else {
        i
    }
}

/// A borrowed int64 or float64 argument. `get(i)` reads the row for result row i (a constant
/// argument arrives as one row and reads the same for every i); None is a null.
#[derive(Clone, Copy)]
pub struct Values<'a, T: Copy> {
    values: &'a [T],
    validity: Validity<'a>,
}

impl<'a, T: Copy> Values<'a, T> {
    unsafe fn new(a: &'a ArrowArray) -> Values<'a, T> {
        let offset = a.offset.max(0) as usize;
        let length = a.length.max(0) as usize;
        let values = if length == 0 || a.n_buffers < 2 || (*a.buffers.add(1)).is_null() {
            &[]
        } else {
            std::slice::from_raw_parts((*a.buffers.add(1) as *const T).add(offset), length)
        };
        Values { values, validity: Validity::new(a) }
    }

    /// Rows in the array (1 for a constant argument).
    pub fn len(&self) -> usize {
        self.values.len()
    }


    /// The value for result row i, None when null. Panics past the end (caught by `guard`).
    pub fn get(&self, i: usize) -> Option<T> {
        let r = arg_row(self.values.len(), i);
        if self.validity.is_valid(r) {
            Some(self.values[r])
        } else {
            None
        }
    }
}

/// An int64 or float64 argument read as f64.
#[derive(Clone, Copy)]
pub enum Number<'a> {
    Int64(Values<'a, i64>),
    Float64(Values<'a, f64>),
}

impl<'a> Number<'a> {
    pub fn get(&self, i: usize) -> Option<f64> {
        match self {
            Number::Int64(v) => v.get(i).map(|x| x as f64),
            Number::Float64(v) => v.get(i),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Number::Int64(v) => v.len(),
            Number::Float64(v) => v.len(),
        }
    }

}

#[derive(Clone, Copy)]
enum Offsets<'a> {
    Small(&'a [i32]),
    Large(&'a [i64]),
}

/// A borrowed string argument, "u" or "U". `get(i)` as for [`Values`].
#[derive(Clone, Copy)]
pub struct Strings<'a> {
    offsets: Offsets<'a>,
    data: &'a [u8],
    length: usize,
    validity: Validity<'a>,
}

impl<'a> Strings<'a> {
    unsafe fn new(a: &'a ArrowArray, large: bool) -> Strings<'a> {
        let offset = a.offset.max(0) as usize;
        let length = a.length.max(0) as usize;
        let empty = length == 0 || a.n_buffers < 3 || (*a.buffers.add(1)).is_null();
        let offsets = match (empty, large) {
            (true, false) => Offsets::Small(&[0]),
            (true, true) => Offsets::Large(&[0]),
            (false, false) => {
                Offsets::Small(std::slice::from_raw_parts((*a.buffers.add(1) as *const i32).add(offset), length + 1))
            }
            (false, true) => {
                Offsets::Large(std::slice::from_raw_parts((*a.buffers.add(1) as *const i64).add(offset), length + 1))
            }
        };
        let end = match offsets {
            Offsets::Small(o) => o[o.len() - 1].max(0) as usize,
            Offsets::Large(o) => o[o.len() - 1].max(0) as usize,
        };
        let data = if end == 0 || (*a.buffers.add(2)).is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(*a.buffers.add(2) as *const u8, end)
        };
        Strings { offsets, data, length, validity: Validity::new(a) }
    }

    /// Rows in the array (1 for a constant argument).
    pub fn len(&self) -> usize {
        self.length
    }


    /// Whether the argument is large utf8 ("U", 64-bit offsets).
    pub fn is_large(&self) -> bool {
        matches!(self.offsets, Offsets::Large(_))
    }

    /// The bytes for result row i, None when null.
    pub fn get_bytes(&self, i: usize) -> Option<&'a [u8]> {
        let r = arg_row(self.length, i);
        if r >= self.length {
            panic!("plutino: row {} read from a string argument of {} rows", r, self.length);
        }
        if !self.validity.is_valid(r) {
            return None;
        }
        let (start, end) = match self.offsets {
            Offsets::Small(o) => (o[r] as usize, o[r + 1] as usize),
            Offsets::Large(o) => (o[r] as usize, o[r + 1] as usize),
        };
        Some(&self.data[start..end])
    }

    /// The string for result row i, None when null. Arrow strings are UTF-8; a row that is
    /// not (a host bug) reads as U+FFFD.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.get_bytes(i).map(|b| std::str::from_utf8(b).unwrap_or("\u{FFFD}"))
    }
}

/// Group ids of an aggregate() call: `group(i)` is row i's group (0 when the host passed none).
pub struct Groups<'a> {
    ids: Option<&'a [i32]>,
    pub count: usize,
}

impl<'a> Groups<'a> {
    /// # Safety
    /// `group_ids` is null or points to `length` ids, as aggregate() receives them.
    pub unsafe fn new(group_ids: *const i32, length: i64, ngroups: i64) -> Groups<'a> {
        let ids = if group_ids.is_null() || length <= 0 {
            None
        } else {
            Some(std::slice::from_raw_parts(group_ids, length as usize))
        };
        Groups { ids, count: ngroups.max(0) as usize }
    }

    pub fn group(&self, row: usize) -> usize {
        match self.ids {
            Some(ids) => ids[row].max(0) as usize,
            None => 0,
        }
    }
}

// ------------------------------------------------------------------------ helpers: results

/// What a built array owns; freed by its release callback with Rust's allocator.
struct Owned {
    buffers: [*const c_void; 3],
    _validity: Option<Vec<u8>>,
    _values: Buffer,
    _data: Vec<u8>,
}

enum Buffer {
    I64(Vec<i64>),
    F64(Vec<f64>),
    I32(Vec<i32>),
}

unsafe extern "C" fn release_owned(array: *mut ArrowArray) {
    if let Some(a) = array.as_mut() {
        if a.release.is_some() {
            if !a.private_data.is_null() {
                drop(Box::from_raw(a.private_data as *mut Owned));
            }
            a.private_data = std::ptr::null_mut();
            a.release = None;
        }
    }
}

/// The validity bitmap of a builder: none until the first null.
#[derive(Default)]
struct NullMask {
    bits: Option<Vec<u8>>,
    nulls: i64,
}

impl NullMask {
    fn push(&mut self, len_before: usize, valid: bool) {
        if !valid && self.bits.is_none() {
            // Rows so far were all valid; this row's byte exists from here on.
            self.bits = Some(vec![0xffu8; len_before / 8 + 1]);
        }
        if let Some(bits) = self.bits.as_mut() {
            if len_before % 8 == 0 && bits.len() <= len_before / 8 {
                bits.push(0xff);
            }
            if !valid {
                bits[len_before / 8] &= !(1u8 << (len_before % 8));
            }
        }
        if !valid {
            self.nulls += 1;
        }
    }
}

/// Move `owned` into `out` as an array of `length` rows with `n_buffers` buffers.
unsafe fn finish_owned(out: *mut ArrowArray, length: usize, nulls: i64, n_buffers: i64, owned: Owned) -> Status {
    let out = match out.as_mut() {
        Some(out) => out,
        None => return ERROR,
    };
    let mut owned = Box::new(owned);
    let buffers = owned.buffers.as_mut_ptr();
    *out = ArrowArray {
        length: length as i64,
        null_count: nulls,
        offset: 0,
        n_buffers,
        n_children: 0,
        buffers,
        children: std::ptr::null_mut(),
        dictionary: std::ptr::null_mut(),
        release: Some(release_owned),
        private_data: Box::into_raw(owned) as *mut c_void,
    };
    OK
}

/// A fixed-width result column (int64 or float64) under construction.
pub struct Builder<T> {
    values: Vec<T>,
    mask: NullMask,
}

impl<T: Copy + Default> Builder<T> {
    pub fn with_capacity(rows: usize) -> Builder<T> {
        Builder { values: Vec::with_capacity(rows), mask: NullMask::default() }
    }

    /// Append a value, or a null for None.
    pub fn push(&mut self, value: Option<T>) {
        self.mask.push(self.values.len(), value.is_some());
        self.values.push(value.unwrap_or_default());
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

}

/// An int64 result column.
pub type Int64Builder = Builder<i64>;
/// A float64 result column.
pub type Float64Builder = Builder<f64>;

macro_rules! plutino_fixed_finish {
    ($t:ty, $variant:ident, $data_type:expr) => {
        impl Builder<$t> {
            /// Move the column into `out` (and its type into `out_type` when not null: call()
            /// may skip the type when validate() gave it). Returns OK.
            ///
            /// # Safety
            /// `out` and `out_type` are the call's out parameters (or null for out_type).
            pub unsafe fn finish(self, out: *mut ArrowArray, out_type: *mut ArrowSchema) -> Status {
                let length = self.values.len();
                let validity = self.mask.bits;
                let owned = Owned {
                    buffers: [
                        validity.as_ref().map_or(std::ptr::null(), |b| b.as_ptr() as *const c_void),
                        self.values.as_ptr() as *const c_void,
                        std::ptr::null(),
                    ],
                    _validity: validity,
                    _values: Buffer::$variant(self.values),
                    _data: Vec::new(),
                };
                let status = finish_owned(out, length, self.mask.nulls, 2, owned);
                if status == OK {
                    write_type(out_type, $data_type);
                }
                status
            }
        }
    };
}
plutino_fixed_finish!(i64, I64, DataType::Int64);
plutino_fixed_finish!(f64, F64, DataType::Float64);

/// A string result column under construction, "u" (32-bit offsets) or "U" (64-bit).
pub struct Utf8Builder {
    offsets: Vec<i64>,
    data: Vec<u8>,
    mask: NullMask,
    large: bool,
}

impl Utf8Builder {
    /// A "u" column (the usual string type; up to 2 GiB of text per batch).
    pub fn with_capacity(rows: usize, bytes: usize) -> Utf8Builder {
        Utf8Builder::new(rows, bytes, false)
    }

    /// A "U" (large utf8) column.
    pub fn large_with_capacity(rows: usize, bytes: usize) -> Utf8Builder {
        Utf8Builder::new(rows, bytes, true)
    }

    fn new(rows: usize, bytes: usize, large: bool) -> Utf8Builder {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Utf8Builder { offsets, data: Vec::with_capacity(bytes), mask: NullMask::default(), large }
    }

    /// Append a string, or a null for None.
    pub fn push(&mut self, value: Option<&str>) {
        self.mask.push(self.offsets.len() - 1, value.is_some());
        if let Some(s) = value {
            self.data.extend_from_slice(s.as_bytes());
        }
        self.offsets.push(self.data.len() as i64);
    }

    /// Append the characters of `chars` as one string (no intermediate String).
    pub fn push_chars<I: IntoIterator<Item = char>>(&mut self, chars: I) {
        self.mask.push(self.offsets.len() - 1, true);
        let mut buf = [0u8; 4];
        for c in chars {
            self.data.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        self.offsets.push(self.data.len() as i64);
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }


    /// Move the column into `out` (and its type into `out_type` when not null). A "u" column
    /// holding more than 2 GiB of text is refused with PLUTINO_ERROR and a message in `ctx`.
    ///
    /// # Safety
    /// `out` and `out_type` are the call's out parameters (or null for out_type).
    pub unsafe fn finish(self, ctx: Ctx<'_>, out: *mut ArrowArray, out_type: *mut ArrowSchema) -> Status {
        let length = self.len();
        let (offsets, data_type) = if self.large {
            (Buffer::I64(self.offsets), DataType::LargeUtf8)
        } else {
            if self.data.len() > i32::MAX as usize {
                return ctx.set_error(&format!(
                    "a string result of {} bytes exceeds the 2 GiB of a 'u' column; return large strings ('U')",
                    self.data.len()
                ));
            }
            (Buffer::I32(self.offsets.iter().map(|&o| o as i32).collect()), DataType::Utf8)
        };
        let offsets_ptr = match &offsets {
            Buffer::I64(v) => v.as_ptr() as *const c_void,
            Buffer::I32(v) => v.as_ptr() as *const c_void,
            Buffer::F64(v) => v.as_ptr() as *const c_void,
        };
        let validity = self.mask.bits;
        let owned = Owned {
            buffers: [
                validity.as_ref().map_or(std::ptr::null(), |b| b.as_ptr() as *const c_void),
                offsets_ptr,
                self.data.as_ptr() as *const c_void,
            ],
            _validity: validity,
            _values: offsets,
            _data: self.data,
        };
        let status = finish_owned(out, length, self.mask.nulls, 3, owned);
        if status == OK {
            write_type(out_type, data_type);
        }
        status
    }
}

// ------------------------------------------------------------------------ unit tests

// Run them from a crate that includes this file as `mod plutino` (the contract's tests do):
// `rustc --edition 2021 --test main.rs` with main.rs holding `#[macro_use] mod plutino { include!(...) }`.
#[cfg(test)]
mod tests {
    use super::*;

    fn context(error: &mut [u8]) -> Context {
        Context {
            struct_size: std::mem::size_of::<Context>() as u32,
            error_capacity: error.len() as u32,
            error: error.as_mut_ptr() as *mut c_char,
            host: std::ptr::null(),
            host_data: std::ptr::null_mut(),
            plugin_name: std::ptr::null(),
            rule_id: std::ptr::null(),
            op_id: std::ptr::null(),
            instance_id: 0,
            data_dir: std::ptr::null(),
        }
    }

    fn message(error: &[u8]) -> String {
        let end = error.iter().position(|&b| b == 0).unwrap();
        String::from_utf8(error[..end].to_vec()).unwrap()
    }

    #[test]
    fn an_api_table_written_with_empty_names_only_its_callbacks() {
        unsafe extern "C" fn close(_ctx: *mut Context, _instance: *mut c_void) {}
        let source = SourceApi { close: Some(close), ..SourceApi::EMPTY };
        assert_eq!(source.struct_size as usize, std::mem::size_of::<SourceApi>());
        assert!(source.close.is_some() && source.ack.is_none() && source.next.is_none());
        let sink = SinkApi { close: Some(close), ..SinkApi::EMPTY };
        assert_eq!(sink.struct_size as usize, std::mem::size_of::<SinkApi>());
        assert!(sink.write.is_none());
    }

    #[test]
    fn the_tag_is_192_bytes_of_c_layout_with_nul_padded_text() {
        let tag = Tag::new(KIND_FUNCTION, "rs-test", "2.3.4", ABI_MINOR);
        let bytes: [u8; 192] = unsafe { std::mem::transmute(tag) };
        assert_eq!(&bytes[0..8], b"PLUTINO\0");
        assert_eq!(u16::from_ne_bytes([bytes[8], bytes[9]]), 192);
        assert_eq!((bytes[16], bytes[17], bytes[18], bytes[19]), (KIND_FUNCTION, TAG_BYTE_ORDER, 8, 0));
        assert_eq!(&bytes[20..26], b"linux\0");
        assert_eq!(&bytes[64..72], b"rs-test\0");
        assert_eq!(&bytes[128..134], b"2.3.4\0");
        assert_eq!(&bytes[160..166], b"1.1.0\0");
        assert!(bytes[176..192].iter().all(|&b| b == 0), "runtime and reserved are zero");
        assert!(valid_plugin_name("a_b-9") && !valid_plugin_name("a b") && !valid_plugin_name(""));
    }

    #[test]
    fn has_field_compares_struct_size_with_the_end_of_the_field() {
        let mut host: HostApi = unsafe { std::mem::zeroed() };
        host.struct_size = 16; // a writer that had only struct_size .. host_version
        assert!(plutino_has_field!(&host, HostApi, host_version));
        assert!(!plutino_has_field!(&host, HostApi, log));
        host.struct_size = std::mem::size_of::<HostApi>() as u32;
        assert!(plutino_has_field!(&host, HostApi, free));
        assert!(!plutino_has_field!(std::ptr::null::<HostApi>(), HostApi, free));
    }

    #[test]
    fn set_error_cuts_at_a_character_boundary_and_terminates() {
        let mut error = [0xffu8; 7];
        let mut ctx = context(&mut error);
        let status = unsafe { Ctx::new(&mut ctx) }.fail(INVALID, "abcdeéz");
        assert_eq!(status, INVALID);
        assert_eq!(message(&error), "abcde"); // 'é' would need bytes 5..7, 6 are usable
    }

    #[test]
    fn guard_turns_a_panic_into_an_error_with_its_message() {
        let mut error = [0u8; 256];
        let mut ctx = context(&mut error);
        let c = unsafe { Ctx::new(&mut ctx) };
        let v: Vec<i64> = Vec::new();
        assert_eq!(guard(c, || OK), OK);
        assert_eq!(guard(c, || v[3] as Status), ERROR);
        let text = message(&error);
        assert!(text.starts_with("the plugin panicked: index out of bounds"), "{}", text);
        assert!(text.contains("plutino.rs:"), "{}", text);
    }

    fn read_back<'a>(array: &'a ArrowArray, schema: &'a ArrowSchema) -> Args<'a> {
        let arrays = Box::leak(Box::new([array as *const ArrowArray]));
        let types = Box::leak(Box::new([schema as *const ArrowSchema]));
        unsafe { Args::new(1, arrays.as_ptr(), types.as_ptr()) }
    }

    #[test]
    fn builders_round_trip_through_the_readers_with_nulls_and_release_once() {
        let mut out: ArrowArray = unsafe { std::mem::zeroed() };
        let mut ty: ArrowSchema = unsafe { std::mem::zeroed() };
        let mut b = Int64Builder::with_capacity(0);
        let values: Vec<Option<i64>> = (0..21).map(|i| if i % 5 == 3 { None } else { Some(i * 7) }).collect();
        values.iter().for_each(|&v| b.push(v));
        assert_eq!(unsafe { b.finish(&mut out, &mut ty) }, OK);
        assert_eq!((out.length, out.null_count, out.n_buffers, format_of(&ty)), (21, 4, 2, "l"));
        let args = read_back(&out, &ty);
        let read = args.int64(0).unwrap();
        assert_eq!((0..21).map(|i| read.get(i)).collect::<Vec<_>>(), values);
        assert!(args.float64(0).is_none() && args.utf8(0).is_none());
        unsafe { out.release.unwrap()(&mut out) };
        assert!(out.release.is_none() && out.private_data.is_null());
        unsafe { ty.release.unwrap()(&mut ty) };

        for large in [false, true] {
            let mut s = if large { Utf8Builder::large_with_capacity(0, 0) } else { Utf8Builder::with_capacity(0, 0) };
            let texts = [Some("héllo"), None, Some(""), Some("z")];
            texts.iter().for_each(|&t| s.push(t));
            s.push_chars("abc".chars().rev());
            let mut error = [0u8; 64];
            let mut ctx = context(&mut error);
            assert_eq!(unsafe { s.finish(Ctx::new(&mut ctx), &mut out, &mut ty) }, OK);
            assert_eq!(format_of(&ty), if large { "U" } else { "u" });
            let args = read_back(&out, &ty);
            let read = args.utf8(0).unwrap();
            assert_eq!(read.is_large(), large);
            let got: Vec<Option<&str>> = (0..5).map(|i| read.get(i)).collect();
            assert_eq!(got, vec![Some("héllo"), None, Some(""), Some("z"), Some("cba")]);
            unsafe { out.release.unwrap()(&mut out) };
        }
    }

    #[test]
    fn a_one_row_argument_is_a_constant_read_for_every_row() {
        let mut out: ArrowArray = unsafe { std::mem::zeroed() };
        let mut ty: ArrowSchema = unsafe { std::mem::zeroed() };
        let mut b = Float64Builder::with_capacity(1);
        b.push(Some(2.5));
        assert_eq!(unsafe { b.finish(&mut out, &mut ty) }, OK);
        let args = read_back(&out, &ty);
        let n = args.number(0).unwrap();
        assert_eq!((n.get(0), n.get(99)), (Some(2.5), Some(2.5)));
        unsafe { out.release.unwrap()(&mut out) };
    }
}
