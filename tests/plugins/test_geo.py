"""The Cython function library `geo` (native_plugins/functions/geo/geo.pyx): haversine and
geohash, called through the loader on real pyarrow arrays, as the engine will call them."""

from __future__ import annotations

import pyarrow as pa
import pytest

from plutino.errors import PluginArgumentError, PluginCallError
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context

PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)


@pytest.fixture(scope="module")
def geo(plugin_build):
    return load_plugin(plugin_build / "functions" / "geo.so", kind="function")


def call(geo, name: str, *args: pa.Array) -> pa.Array:
    inst = geo.functions[name].create(Context(plugin_name="geo"))
    try:
        return inst.call(list(args), max(len(a) for a in args))
    finally:
        inst.close()


def f64(*values) -> pa.Array:
    return pa.array(values, pa.float64())


# ---------------------------------------------------------------- the library


def test_geo_is_a_function_library_built_from_cython_exporting_haversine_and_geohash(geo):
    assert geo.kind == "function"
    assert geo.name == "geo"
    assert geo.version == "1.0.0"
    assert sorted(geo.functions) == ["geohash", "haversine"]
    assert (geo.functions["haversine"].min_args, geo.functions["haversine"].max_args) == (4, 4)
    assert (geo.functions["geohash"].min_args, geo.functions["geohash"].max_args) == (3, 3)


# ---------------------------------------------------------------- haversine


def test_haversine_paris_to_london_is_about_343_5_km(geo):
    km = call(geo, "haversine", f64(PARIS[0]), f64(PARIS[1]), f64(LONDON[0]), f64(LONDON[1]))
    assert km.type == pa.float64()
    assert km[0].as_py() == pytest.approx(343.5, abs=1.0)


def test_haversine_of_a_point_to_itself_is_zero(geo):
    km = call(geo, "haversine", f64(PARIS[0], 0.0), f64(PARIS[1], 0.0), f64(PARIS[0], 0.0), f64(PARIS[1], 0.0))
    assert km.to_pylist() == [0.0, 0.0]


def test_haversine_half_the_equator_uses_the_mean_earth_radius(geo):
    km = call(geo, "haversine", f64(0.0), f64(0.0), f64(0.0), f64(180.0))
    assert km[0].as_py() == pytest.approx(3.141592653589793 * 6371.0088, rel=1e-12)


def test_haversine_reads_length_one_arguments_as_constants(geo):
    lats = f64(PARIS[0], LONDON[0], 0.0)
    lons = f64(PARIS[1], LONDON[1], 0.0)
    km = call(geo, "haversine", lats, lons, f64(PARIS[0]), f64(PARIS[1]))
    assert len(km) == 3
    assert km[0].as_py() == 0.0
    assert km[1].as_py() == pytest.approx(343.5, abs=1.0)
    assert km[2].as_py() == pytest.approx(5437.3, abs=1.0)  # (0, 0) to Paris


def test_haversine_accepts_int64_coordinates(geo):
    km = call(geo, "haversine", pa.array([0, 10]), pa.array([0, 0]), f64(0.0), pa.array([1]))
    expected = call(geo, "haversine", f64(0.0, 10.0), f64(0.0, 0.0), f64(0.0), f64(1.0))
    assert km.to_pylist() == expected.to_pylist()


def test_haversine_propagates_nulls_from_any_argument(geo):
    lat1 = pa.array([PARIS[0], None, PARIS[0], PARIS[0]], pa.float64())
    lon2 = pa.array([LONDON[1], LONDON[1], None, LONDON[1]], pa.float64())
    km = call(geo, "haversine", lat1, f64(PARIS[1]), f64(LONDON[0]), lon2)
    assert km.is_null().to_pylist() == [False, True, True, False]
    assert km[3].as_py() == pytest.approx(343.5, abs=1.0)


def test_haversine_of_a_null_constant_is_all_nulls(geo):
    km = call(geo, "haversine", f64(1.0, 2.0), f64(1.0, 2.0), pa.array([None], pa.float64()), f64(0.0))
    assert km.null_count == 2


def test_haversine_reads_sliced_arrays_at_their_offset(geo):
    lats = f64(0.0, 0.0, PARIS[0], LONDON[0]).slice(2)
    lons = f64(0.0, 0.0, PARIS[1], LONDON[1]).slice(2)
    km = call(geo, "haversine", lats, lons, f64(PARIS[0]), f64(PARIS[1]))
    assert km[0].as_py() == 0.0
    assert km[1].as_py() == pytest.approx(343.5, abs=1.0)


def test_haversine_validate_returns_float64_for_float64_and_int64(geo):
    fn = geo.functions["haversine"]
    assert fn.validate([pa.float64(), pa.int64(), pa.float64(), pa.int64()]) == pa.float64()


def test_haversine_validate_refuses_a_string_argument_naming_it_and_its_type(geo):
    with pytest.raises(PluginArgumentError) as err:
        geo.functions["haversine"].validate([pa.float64(), pa.float64(), pa.string(), pa.float64()])
    message = str(err.value)
    assert "plugin 'geo'" in message
    assert "haversine(): argument 3 (lat2) must be float64 or int64, got utf8" in message


def test_haversine_validate_refuses_float32_by_name(geo):
    with pytest.raises(PluginArgumentError, match=r"argument 1 \(lat1\) must be float64 or int64, got float32"):
        geo.functions["haversine"].validate([pa.float32(), pa.float64(), pa.float64(), pa.float64()])


def test_haversine_call_with_a_wrong_type_fails_with_the_same_message_instead_of_misreading(geo):
    with pytest.raises(PluginCallError, match=r"argument 2 \(lon1\) must be float64 or int64, got utf8"):
        call(geo, "haversine", f64(1.0), pa.array(["east"]), f64(1.0), f64(1.0))


# ---------------------------------------------------------------- geohash


def test_geohash_of_a_known_point_at_precision_11(geo):
    cells = call(geo, "geohash", f64(57.64911), f64(10.40744), pa.array([11]))
    assert cells.type == pa.string()
    assert cells.to_pylist() == ["u4pruydqqvj"]


@pytest.mark.parametrize(
    ("lat", "lon", "precision", "expected"),
    [
        (57.64911, 10.40744, 5, "u4pru"),
        (48.8566, 2.3522, 7, "u09tvw0"),
        (0.0, 0.0, 1, "s"),
        (-90.0, -180.0, 12, "000000000000"),
        (90.0, 180.0, 12, "zzzzzzzzzzzz"),
    ],
)
def test_geohash_known_cells(geo, lat, lon, precision, expected):
    assert call(geo, "geohash", f64(lat), f64(lon), pa.array([precision]))[0].as_py() == expected


def test_geohash_precision_may_vary_per_row_and_be_int32(geo):
    cells = call(geo, "geohash", f64(57.64911, 57.64911), f64(10.40744, 10.40744), pa.array([3, 11], pa.int32()))
    assert cells.to_pylist() == ["u4p", "u4pruydqqvj"]


def test_geohash_propagates_nulls(geo):
    lat = pa.array([57.64911, None, 57.64911], pa.float64())
    precision = pa.array([5, 5, None], pa.int64())
    assert call(geo, "geohash", lat, f64(10.40744), precision).to_pylist() == ["u4pru", None, None]


@pytest.mark.parametrize("precision", [0, 13, -1])
def test_geohash_refuses_a_precision_outside_1_to_12_naming_the_value_and_row(geo, precision):
    with pytest.raises(PluginCallError) as err:
        call(geo, "geohash", f64(1.0, 2.0), f64(1.0, 2.0), pa.array([precision]))
    assert f"precision must be an integer from 1 to 12, got {precision} (row 0)" in str(err.value)
    assert err.value.status == "PLUTINO_INVALID"


def test_geohash_refuses_a_latitude_off_the_globe(geo):
    with pytest.raises(PluginCallError, match=r"latitude must be within \[-90, 90\] degrees, got 91 \(row 1\)"):
        call(geo, "geohash", f64(1.0, 91.0), f64(1.0), pa.array([5]))


def test_geohash_validate_returns_utf8(geo):
    assert geo.functions["geohash"].validate([pa.float64(), pa.int64(), pa.int64()]) == pa.string()


def test_geohash_validate_refuses_a_float_precision(geo):
    expected = r"argument 3 \(precision\) must be an integer from 1 to 12 \(int64 or int32\), got float64"
    with pytest.raises(PluginArgumentError, match=expected):
        geo.functions["geohash"].validate([pa.float64(), pa.float64(), pa.float64()])


def test_geohash_validate_refuses_a_string_coordinate(geo):
    with pytest.raises(PluginArgumentError, match=r"argument 2 \(lon\) must be float64 or int64, got utf8"):
        geo.functions["geohash"].validate([pa.float64(), pa.string(), pa.int64()])


def test_geohash_wrong_argument_count_is_refused_by_the_host(geo):
    with pytest.raises(PluginArgumentError, match=r"geohash\(\) takes"):
        geo.functions["geohash"].validate([pa.float64(), pa.float64()])
