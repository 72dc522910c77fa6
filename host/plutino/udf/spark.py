"""A :func:`plutino.udf` in Spark: ``DataFrame.mapInArrow`` with the Spark schema worked out.

Spark's own way to run a vectorised Python function over Arrow batches is
``df.mapInArrow(func, schema)`` (Spark >= 3.3; batch and Structured Streaming DataFrames
alike): each Python worker gets an iterator of ``pyarrow.RecordBatch`` per partition and
returns one, whose rows Spark reads against ``schema``, which it wants before any row runs::

    import plutino
    from plutino.udf.spark import map_in_arrow

    f = plutino.udf(["geo.so"], select="id, haversine(lat, lon, 48.8566, 2.3522) AS km")
    out = map_in_arrow(spark.read.parquet("points/"), f)     # a DataFrame: id long, km double

:func:`map_in_arrow` plans the UDF in the driver over the Arrow schema Spark will hand it
(Spark's types: ``timestamp[us, tz=<session time zone>]`` for TIMESTAMP, ``string`` or, with
``spark.sql.execution.arrow.useLargeVarTypes``, ``large_string``, which the wrapper below turns
into the ``string`` plugins take), turns the result's Arrow schema into Spark's
(:func:`spark_schema`) and passes Spark a small picklable wrapper around
:meth:`~plutino.udf.ArrowUdf.map_batches` that casts each result batch to the Arrow form of
that schema where they differ (nanosecond timestamps to microseconds, dictionary columns to
their values, unsigned integers to the wider signed type Spark has).

The executors' Python (``PYSPARK_PYTHON``, or ``spark.pyspark.python`` given at launch) needs
plutino and pyarrow installed; the plugin files travel inside the pickled UDF (``embed=True``,
the default). Spark hands a worker batches of at most ``spark.sql.execution.arrow
.maxRecordsPerBatch`` rows (10,000 by default): an aggregate UDF gives one row per group per
batch, to combine with Spark's own ``groupBy``.

pyspark is imported by this module's functions only, never by ``import plutino``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from plutino.errors import PlutinoError

from .arrow_udf import ArrowUdf

#: Arrow types Spark has no type for, and the wider type a column of them becomes.
_WIDER = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64(),
          pa.float16(): pa.float32(), pa.date64(): pa.date32()}

_INSTALL = "install it with: pip install 'plutino[scaleout]' (or pip install pyspark)"


def _pyspark_types() -> Any:
    try:
        from pyspark.sql import types
    except ImportError:
        raise PlutinoError(f"plutino.udf.spark needs pyspark; {_INSTALL}") from None
    return types


def _dataframe(df: Any, what: str) -> Any:
    """``df`` when it is a Spark DataFrame (classic or Spark Connect), else a clear error."""
    if not (hasattr(df, "mapInArrow") and hasattr(df, "schema") and hasattr(df, "sparkSession")):
        kind = type(df).__module__ + "." + type(df).__qualname__
        raise PlutinoError(f"{what} needs a pyspark DataFrame (with mapInArrow, Spark >= 3.3), got {kind}")
    return df


def arrow_input_schema(df: Any) -> pa.Schema:
    """The Arrow schema of the batches Spark hands ``mapInArrow``'s function for ``df``: its
    columns in Spark's Arrow form (the session's time zone on TIMESTAMP columns, large strings
    when ``spark.sql.execution.arrow.useLargeVarTypes`` is on)."""
    _pyspark_types()
    from pyspark.sql.pandas.types import to_arrow_type

    df = _dataframe(df, "arrow_input_schema")
    conf = df.sparkSession.conf
    timezone = conf.get("spark.sql.session.timeZone")
    large = str(conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")).lower() == "true"
    fields = []
    for field in df.schema.fields:
        try:
            try:
                arrow_type = to_arrow_type(field.dataType, timezone=timezone, prefers_large_types=large)
            except TypeError:  # pyspark 3.5: no such arguments (UTC, small strings)
                arrow_type = to_arrow_type(field.dataType)
        except Exception as exc:  # pyspark's PySparkTypeError / TypeError, by version
            raise PlutinoError(f"column '{field.name}' of the DataFrame is {field.dataType.simpleString()}, which"
                               f" Spark cannot hand over as Arrow ({exc}); select the columns the UDF reads, or"
                               " cast this one, before map_in_arrow") from None
        fields.append(pa.field(field.name, arrow_type, nullable=field.nullable))
    return pa.schema(fields)


def spark_arrow_type(arrow_type: pa.DataType) -> pa.DataType:
    """The Arrow type a result column of ``arrow_type`` is handed to Spark as: the same, or the
    nearest one Spark reads (dictionary columns as their values, unsigned integers as the wider
    signed type or decimal(20, 0), timestamps and durations in microseconds, Spark's unit,
    anything finer cut off as Spark's own conversions do)."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return spark_arrow_type(t.value_type)
    if t in _WIDER:
        return _WIDER[t]
    if t == pa.uint64():
        return pa.decimal128(20, 0)
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_duration(t):
        return pa.duration("us")
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(spark_arrow_type(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(spark_arrow_type(t.key_type), spark_arrow_type(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, spark_arrow_type(f.type)) for f in t])
    return t


def spark_type(name: str, arrow_type: pa.DataType) -> Any:
    """The Spark type of a result column ``name`` of ``arrow_type`` (a clear error for one that
    Spark has no type for). A timestamp with a time zone is a TIMESTAMP (an instant), one
    without a TIMESTAMP_NTZ (a wall-clock time)."""
    types = _pyspark_types()
    from pyspark.sql.pandas.types import from_arrow_type

    t = spark_arrow_type(arrow_type)
    if pa.types.is_timestamp(t):
        return types.TimestampType() if t.tz is not None else types.TimestampNTZType()
    if pa.types.is_list(t):
        return types.ArrayType(spark_type(name, t.value_type), containsNull=True)
    if pa.types.is_map(t):
        return types.MapType(spark_type(name, t.key_type), spark_type(name, t.item_type), valueContainsNull=True)
    if pa.types.is_struct(t):
        return types.StructType([types.StructField(f.name, spark_type(f"{name}.{f.name}", f.type), nullable=True)
                                 for f in t])
    try:
        return from_arrow_type(t)
    except Exception:  # PySparkTypeError UNSUPPORTED_DATA_TYPE_FOR_ARROW_CONVERSION, or TypeError
        raise PlutinoError(f"the UDF's result column '{name}' is {arrow_type}, which Spark has no type for;"
                           f" cast it in the select list (e.g. CAST(expr AS bigint) AS {name.split('.')[0]})"
                           " or leave it out") from None


def spark_schema(df: Any, udf: ArrowUdf) -> Any:
    """The Spark schema (``StructType``) of ``udf``'s result over ``df``'s rows: the UDF planned
    in this process over :func:`arrow_input_schema`, each column mapped by :func:`spark_type`.
    Every column is nullable (a plugin function may return nulls)."""
    return _plan(df, udf, "spark_schema")[0]


def _plan(df: Any, udf: ArrowUdf, what: str) -> tuple[Any, pa.Schema]:
    """The Spark schema of ``udf`` over ``df`` and the Arrow schema of the batches handed back."""
    types = _pyspark_types()
    df = _dataframe(df, what)
    if not isinstance(udf, ArrowUdf):
        raise PlutinoError(f"{what} expected a plutino.udf(...) (ArrowUdf), got {type(udf).__name__};"
                           " build one with plutino.udf(plugins, select=...)")
    out = udf.output_schema(_small_vars_schema(arrow_input_schema(df)))
    schema = types.StructType([types.StructField(f.name, spark_type(f.name, f.type), nullable=True) for f in out])
    return schema, pa.schema([pa.field(f.name, spark_arrow_type(f.type)) for f in out])


#: Spark's large variable-width types (``spark.sql.execution.arrow.useLargeVarTypes``) and the
#: types plugins take (a plugin's string argument is Arrow ``string``): a batch's columns of
#: Spark's few thousand rows are far from the 2 GiB that needs large offsets.
_SMALL_VARS = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}


def _small_vars_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(_SMALL_VARS.get(f.type, f.type)) for f in schema])


def _small_vars(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with large strings and binaries as ordinary ones (unchanged when it has none)."""
    if not any(t in _SMALL_VARS for t in batch.schema.types):
        return batch
    return pa.RecordBatch.from_arrays([c.cast(_SMALL_VARS[c.type]) if c.type in _SMALL_VARS else c
                                       for c in batch.columns], schema=_small_vars_schema(batch.schema))


class SparkBatches:
    """What Spark's ``mapInArrow`` calls: ``udf.map_batches`` over Spark's batches (large strings
    and binaries, which Spark hands with ``useLargeVarTypes``, as ordinary ones) with every result
    batch in the Arrow form of the declared Spark schema. Picklable (an :class:`ArrowUdf` and a
    schema)."""

    def __init__(self, udf: ArrowUdf, arrow_schema: pa.Schema) -> None:
        self.udf = udf
        self.arrow_schema = arrow_schema

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        want = self.arrow_schema
        for batch in self.udf.map_batches(map(_small_vars, batches)):
            if batch.schema.equals(want):
                yield batch
            elif [f.name for f in batch.schema] != want.names:
                raise PlutinoError(f"the UDF's result columns {batch.schema.names} are not the ones declared to"
                                   f" Spark ({want.names}): the input's schema changed after map_in_arrow planned it")
            else:
                yield pa.RecordBatch.from_arrays(
                    [col if col.type == f.type else _cast(col, f) for col, f in zip(batch.columns, want)],
                    schema=want)


def _cast(column: pa.Array, field: pa.Field) -> pa.Array:
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    # below a microsecond is cut off, as Spark's own Arrow conversion does (Spark keeps
    # microseconds); any other loss (an integer out of range) is an error
    truncates = pa.types.is_timestamp(field.type) or pa.types.is_duration(field.type)
    try:
        return column.cast(field.type, safe=not truncates)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PlutinoError(f"the UDF's result column '{field.name}' ({column.type}) does not convert to the type"
                           f" declared to Spark ({field.type}): {exc}") from None


def map_in_arrow(df: Any, udf: ArrowUdf, *, barrier: bool = False) -> Any:
    """``df.mapInArrow`` with ``udf``: a DataFrame of the UDF's result columns (its select list,
    rows kept by its ``where``), batch or streaming as ``df`` is. ``barrier`` is mapInArrow's
    (Spark >= 3.5: run the stage's tasks together)."""
    schema, arrow_schema = _plan(df, udf, "map_in_arrow")
    func = SparkBatches(udf, arrow_schema)
    if barrier:
        return df.mapInArrow(func, schema, barrier=True)
    return df.mapInArrow(func, schema)


__all__ = ["SparkBatches", "arrow_input_schema", "map_in_arrow", "spark_arrow_type", "spark_schema", "spark_type"]
