//! rust_strings -- an example function library written in Rust against the contract's plutino.rs.
//!
//!   rs_reverse(text)     text reversed by character; "u" or "U" strings in, the same type out
//!   rs_scale(x, factor)  x * factor as float64 (int64 or float64 arguments; null in, null out)
//!   rs_sum(x)            aggregate: the sum of x per group (int64 or float64), nulls skipped
//!
//!   SELECT rs_reverse(name) AS r, rs_scale(t, 1.8) AS f FROM demo
//!   SELECT k, rs_sum(amount) AS total FROM demo GROUP BY k, TUMBLINGWINDOW(ss, 10)
//!
//! Every callback is an `unsafe extern "C" fn` with the C signature of plutino.h; its body
//! wraps the raw pointers in plutino.rs's safe views (Ctx, ArgTypes, Args, Groups) and runs
//! inside `guard`, which turns a panic into an error status instead of unwinding into the host.

// The contract's bindings and macros, as the module `plutino` at the crate root (the macros
// name `crate::plutino`). PLUTINO_RUST_DIR is set by plutino_add_rust_plugin() and by
// `plutino plugin build`; by hand: PLUTINO_RUST_DIR="$(python -m plutino_contract --rust-dir)".
#[macro_use]
#[allow(dead_code)]
mod plutino {
    include!(concat!(
        env!(
            "PLUTINO_RUST_DIR",
            "set PLUTINO_RUST_DIR to the output of `python -m plutino_contract --rust-dir`"
        ),
        "/plutino.rs"
    ));
}

use plutino::{
    guard, type_name, write_type, ArgTypes, Args, ArrowArray, ArrowSchema, Context, Ctx, DataType,
    Float64Builder, Function, Groups, Int64Builder, Status, Utf8Builder, INVALID, UNSUPPORTED,
};
use std::ffi::c_void;

// ---------------------------------------------------------------- rs_reverse(text)

unsafe extern "C" fn reverse_validate(
    ctx: *mut Context,
    nargs: i32,
    arg_types: *const *const ArrowSchema,
    out_type: *mut ArrowSchema,
) -> Status {
    let ctx = Ctx::new(ctx);
    let types = ArgTypes::new(nargs, arg_types);
    match types.data_type(0) {
        // The result has the argument's string type: "u" stays "u", "U" stays "U".
        Some(t) if t.is_string() => write_type(out_type, t),
        _ => ctx.fail(
            INVALID,
            &format!(
                "rs_reverse: the argument must be a string, got {} (Arrow '{}'); pass a string column",
                type_name(types.format(0)),
                types.format(0)
            ),
        ),
    }
}

unsafe extern "C" fn reverse_call(
    ctx: *mut Context,
    _state: *mut c_void,
    nargs: i32,
    args: *const *const ArrowArray,
    arg_types: *const *const ArrowSchema,
    length: i64,
    out: *mut ArrowArray,
    _out_type: *mut ArrowSchema,
) -> Status {
    let ctx = Ctx::new(ctx);
    let args = Args::new(nargs, args, arg_types);
    guard(ctx, || {
        let text = match args.utf8(0) {
            Some(text) => text,
            None => return ctx.fail(UNSUPPORTED, "rs_reverse: the argument must be a string"),
        };
        let rows = length as usize;
        let mut result = if text.is_large() {
            Utf8Builder::large_with_capacity(rows, rows * 8)
        } else {
            Utf8Builder::with_capacity(rows, rows * 8)
        };
        for i in 0..rows {
            match text.get(i) {
                Some(s) => result.push_chars(s.chars().rev()),
                None => result.push(None),
            }
        }
        // validate() gave the type, so out_type stays unwritten (the host's fast path).
        result.finish(ctx, out, std::ptr::null_mut())
    })
}

static RS_REVERSE: Function = Function::scalar("rs_reverse\0", 1, 1, reverse_call).validate(reverse_validate);

// ---------------------------------------------------------------- rs_scale(x, factor)

fn is_number(t: Option<DataType>) -> bool {
    matches!(t, Some(DataType::Int64) | Some(DataType::Float64))
}

unsafe extern "C" fn scale_validate(
    ctx: *mut Context,
    nargs: i32,
    arg_types: *const *const ArrowSchema,
    out_type: *mut ArrowSchema,
) -> Status {
    let ctx = Ctx::new(ctx);
    let types = ArgTypes::new(nargs, arg_types);
    for (i, what) in [(0, "x"), (1, "factor")] {
        if !is_number(types.data_type(i)) {
            return ctx.fail(
                INVALID,
                &format!(
                    "rs_scale: {} must be an int64 or float64, got {} (Arrow '{}')",
                    what,
                    type_name(types.format(i)),
                    types.format(i)
                ),
            );
        }
    }
    write_type(out_type, DataType::Float64)
}

unsafe extern "C" fn scale_call(
    ctx: *mut Context,
    _state: *mut c_void,
    nargs: i32,
    args: *const *const ArrowArray,
    arg_types: *const *const ArrowSchema,
    length: i64,
    out: *mut ArrowArray,
    out_type: *mut ArrowSchema,
) -> Status {
    let ctx = Ctx::new(ctx);
    let args = Args::new(nargs, args, arg_types);
    guard(ctx, || {
        let (x, factor) = match (args.number(0), args.number(1)) {
            (Some(x), Some(factor)) => (x, factor),
            _ => return ctx.fail(UNSUPPORTED, "rs_scale: both arguments must be int64 or float64"),
        };
        let rows = length as usize;
        let mut result = Float64Builder::with_capacity(rows);
        for i in 0..rows {
            // A constant factor arrives as one row; get(i) reads it for every i.
            result.push(match (x.get(i), factor.get(i)) {
                (Some(x), Some(f)) => Some(x * f),
                _ => None,
            });
        }
        // Writing out_type as well is allowed (and checked by the host against validate()).
        result.finish(out, out_type)
    })
}

static RS_SCALE: Function = Function::scalar("rs_scale\0", 2, 2, scale_call).validate(scale_validate);

// ---------------------------------------------------------------- rs_sum(x), an aggregate

unsafe extern "C" fn sum_validate(
    ctx: *mut Context,
    nargs: i32,
    arg_types: *const *const ArrowSchema,
    out_type: *mut ArrowSchema,
) -> Status {
    let ctx = Ctx::new(ctx);
    let types = ArgTypes::new(nargs, arg_types);
    match types.data_type(0) {
        Some(t) if is_number(Some(t)) => write_type(out_type, t),
        _ => ctx.fail(
            INVALID,
            &format!(
                "rs_sum: the argument must be an int64 or float64, got {} (Arrow '{}')",
                type_name(types.format(0)),
                types.format(0)
            ),
        ),
    }
}

unsafe extern "C" fn sum_aggregate(
    ctx: *mut Context,
    _state: *mut c_void,
    nargs: i32,
    args: *const *const ArrowArray,
    arg_types: *const *const ArrowSchema,
    length: i64,
    group_ids: *const i32,
    ngroups: i64,
    out: *mut ArrowArray,
    _out_type: *mut ArrowSchema,
) -> Status {
    let ctx = Ctx::new(ctx);
    let args = Args::new(nargs, args, arg_types);
    let groups = Groups::new(group_ids, length, ngroups);
    let rows = length as usize;
    guard(ctx, || {
        if let Some(x) = args.int64(0) {
            // None until a group has a non-null value: a group of nulls sums to null.
            let mut sums: Vec<Option<i64>> = vec![None; groups.count];
            for i in 0..rows {
                if let Some(v) = x.get(i) {
                    let g = groups.group(i);
                    match sums[g].unwrap_or(0).checked_add(v) {
                        Some(s) => sums[g] = Some(s),
                        None => {
                            return ctx.fail(
                                INVALID,
                                &format!(
                                    "rs_sum: the int64 sum of a group overflows at the value {}; \
                                     sum a float64 instead (rs_sum(x * 1.0))",
                                    v
                                ),
                            )
                        }
                    }
                }
            }
            let mut result = Int64Builder::with_capacity(groups.count);
            sums.into_iter().for_each(|s| result.push(s));
            result.finish(out, std::ptr::null_mut())
        } else if let Some(x) = args.float64(0) {
            let mut sums: Vec<Option<f64>> = vec![None; groups.count];
            for i in 0..rows {
                if let Some(v) = x.get(i) {
                    let g = groups.group(i);
                    sums[g] = Some(sums[g].unwrap_or(0.0) + v);
                }
            }
            let mut result = Float64Builder::with_capacity(groups.count);
            sums.into_iter().for_each(|s| result.push(s));
            result.finish(out, std::ptr::null_mut())
        } else {
            ctx.fail(UNSUPPORTED, "rs_sum: the argument must be an int64 or float64")
        }
    })
}

static RS_SUM: Function = Function::aggregate("rs_sum\0", 1, 1, sum_aggregate).validate(sum_validate);

// ---------------------------------------------------------------- the library

// The tag (section .plutino_tag), the descriptor and the one exported symbol, plutino_plugin_v1.
// No version given: the one CMake passes (VERSION 1.0.0), else Cargo.toml's.
plutino_declare_functions!("rust_strings", [&RS_REVERSE, &RS_SCALE, &RS_SUM]);
