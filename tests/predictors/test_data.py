"""The one reader of each latency file format (``arch,latency_ms`` samples, ``lat_<device>_ms`` tables) and the loaders."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError
from predictors.data import (
    column_device,
    from_csv,
    latency_column,
    read_latency_samples,
    read_latency_table,
    read_samples,
    split_indices,
    target_device,
)


@pytest.fixture
def nb201_specs(nb201_rows):
    return nb201_rows[0][:5]


def test_samples_with_and_without_the_header_read_the_same(tmp_path, nb201_specs):
    body = "".join(f"{a},{i + 1.5}\n" for i, a in enumerate(nb201_specs))
    with_header, without = tmp_path / "a.csv", tmp_path / "b.csv"
    with_header.write_text("arch,latency_ms\n# measured twice\n\n" + body)
    without.write_text(body)
    a, b = read_latency_samples(with_header), read_latency_samples(without)
    assert a.archs == b.archs == tuple(nb201_specs)
    np.testing.assert_array_equal(a.latency_ms, [1.5, 2.5, 3.5, 4.5, 5.5])
    assert a.lines == (4, 5, 6, 7, 8) and b.lines == (1, 2, 3, 4, 5)


def test_a_header_other_than_arch_latency_ms_is_an_error_not_a_sample(tmp_path, nb201_specs):
    path = tmp_path / "s.csv"
    path.write_text("arch,lat_ms\n" + "".join(f"{a},1.0\n" for a in nb201_specs))
    with pytest.raises(DataError, match="expected the header 'arch,latency_ms' or no header") as info:
        read_latency_samples(path)
    assert "'arch,lat_ms'" in str(info.value)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("a,1.0\nb,-3\n", "line 2 has latency -3.0"),
        ("a,1.0\nb,x\n", "line 2 has latency 'x'"),
        ("a,1.0\nb,2.0,3\n", "line 2 has 3 fields"),
        ("arch,latency_ms\n# measured today\n\na,1.0\nb,-3\n", "line 5 has latency -3.0"),
        ("\ufeffarch,latency_ms\na,1.0\nb,x,1\n", "line 3 has 3 fields"),
        ("a,1.0\na,2.0\n", "architecture 'a' appears more than once"),
        ("arch,latency_ms\n", "holds no samples"),
        (" ,1.0\n", "empty architecture"),
    ],
)
def test_bad_samples_name_the_row(tmp_path, text, needle):
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=needle):
        read_latency_samples(path)


def test_read_samples_infers_the_space(tmp_path, nb201_specs):
    path = tmp_path / "s.csv"
    path.write_text("".join(f"{a},1.0\n" for a in nb201_specs))
    data = read_samples(path, None, "pixel3")
    assert data.space == "nb201" and data.device == "pixel3" and data.source == f"samples:{path}"


def test_latency_table_columns_by_device_and_other_columns(tmp_path):
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("idx,ops,lat_cpu_ms,lat_gpu_ms,acc\n0, a ,1.0,2.0,0.5\n1,b,3.0,4.0,0.7\n")
    table = read_latency_table(path)
    assert table.archs == ("a", "b") and table.devices == ["cpu", "gpu"]
    np.testing.assert_array_equal(table.latency_ms["gpu"], [2.0, 4.0])
    assert sorted(table.other) == ["acc", "idx"]
    assert table.column("lat_cpu_ms", "t")[0] == table.column("cpu", "t")[0] == "cpu"
    with pytest.raises(DataError, match="no latency column 'lat_tpu_ms'; it has lat_cpu_ms, lat_gpu_ms"):
        table.column("tpu", "t")


@pytest.mark.parametrize(
    "text, needle",
    [
        ("arch,acc\na,1\n", "no latency columns"),
        ("name,lat_cpu_ms\na,1\n", "expected an 'arch' or 'ops' column"),
        ("arch,lat_cpu_ms\na,inf\n", "line 2 holds 'inf'"),
        ("arch,lat_cpu_ms\na,1,2\n", "line 2 has 3 fields"),
    ],
)
def test_bad_tables_are_data_errors(tmp_path, text, needle):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=needle):
        read_latency_table(path)


def test_latency_column_names_one_rule():
    assert latency_column("titanx_1") == "lat_titanx_1_ms"
    assert column_device("lat_titanx_1_ms") == target_device("lat_titanx_1_ms") == target_device("titanx_1") == "titanx_1"
    assert column_device("lat__ms") is None and column_device("acc") is None
    with pytest.raises(ConfigError, match="--target must name a latency column"):
        target_device("  ")


def test_from_csv_checks_latencies(tmp_path, nb201_specs):
    path = tmp_path / "t.csv"
    path.write_text("arch,lat_dev_ms\n" + "".join(f"{a},{-1.0 if i == 2 else 1.0}\n" for i, a in enumerate(nb201_specs)))
    with pytest.raises(DataError) as info:
        from_csv(path, "dev")
    assert f"latency of '{nb201_specs[2]}' is -1.0" in str(info.value)


def test_split_is_seeded_and_partitions():
    a = split_indices(50, 0.2, seed=3)
    b = split_indices(50, 0.2, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    assert len(a[1]) == 10 and sorted([*a[0], *a[1]]) == list(range(50))
    train, val = split_indices(50, 0.2, seed=3, n_train=7)
    assert len(train) == 7 and len(val) == 43
