import gzip

import numpy as np
import pytest

from hwprof.errors import DataError, InvalidArchitecture
from nas.tabular import load_fbnet, load_nb201, read_latency_csv

FIRST_ARCH = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
SECOND_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_nb201_bundled_table():
    t = load_nb201()
    assert len(t.archs) == 15625 and len(set(t.archs)) == 15625
    assert len(t.devices) == 21
    assert {"gold_6240", "titanx_32", "pixel3", "titan_rtx_1"} <= set(t.devices)
    assert set(t.accuracy) == {"cifar10", "cifar100", "ImageNet16-120"}
    for acc in t.accuracy.values():
        assert acc.dtype == np.float64 and acc.shape == (15625,)
        assert np.all((acc > 0) & (acc < 100))
    for lat in t.latency_ms.values():
        assert lat.dtype == np.float64 and lat.shape == (15625,) and np.all(lat > 0)
    # Header rows of the file (idx 0 and 1).
    assert t.archs[0] == FIRST_ARCH and t.archs[1] == SECOND_ARCH
    assert t.accuracy["cifar10"][0] == pytest.approx(85.863)
    assert t.accuracy["cifar100"][0] == pytest.approx(52.913)
    assert t.accuracy["ImageNet16-120"][1] == pytest.approx(44.033)
    assert t.latency_ms["gold_6240"][0] == pytest.approx(6.6145)
    assert t.latency_ms["titanxp_32"][1] == pytest.approx(9.9657)
    assert t.index_of(SECOND_ARCH) == 1
    # CIFAR-100 is harder than CIFAR-10 for the same network.
    assert np.mean(t.accuracy["cifar100"]) < np.mean(t.accuracy["cifar10"])


def test_default_load_is_cached_and_read_only():
    t = load_nb201()
    assert load_nb201() is t
    with pytest.raises(ValueError):
        t.accuracy["cifar10"][0] = 1.0


def test_index_of_unknown_arch():
    with pytest.raises(InvalidArchitecture, match="not in the NAS-Bench-201 table"):
        load_nb201().index_of("|conv~0|")


def test_fbnet_bundled_table():
    t = load_fbnet()
    assert len(t.archs) == 5000 and len(t.devices) == 21
    assert "titanx_64" in t.devices and "gold_6240" in t.devices
    assert t.archs[0].startswith("k5_e6|skip|k3_e1_g2|")
    assert all(len(a.split("|")) == 22 for a in t.archs)
    assert t.latency_ms["1080ti_1"][0] == pytest.approx(10.615)
    assert t.latency_ms["samsung_s7"][0] == pytest.approx(100.0)


def test_an_explicit_path_loads_the_same_table_as_the_bundled_copy(shared_data):
    # (how fast it loads is not a unit test's business: a loaded 2-core host took 1.56 s once)
    t = load_nb201(shared_data / "nb201.csv.gz")  # an explicit path bypasses the cache
    bundled = load_nb201()
    assert t.archs == bundled.archs and t.latency_ms.keys() == bundled.latency_ms.keys()
    assert all(np.array_equal(t.latency_ms[d], bundled.latency_ms[d]) for d in t.latency_ms)


def _write(path, text):
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def test_read_latency_csv_plain_and_gzip(tmp_path):
    text = "idx,arch,c10_acc,lat_cpu_a_ms,lat_gpu_1_ms\n0,a,90.5,1.5,0.25\n1,b,80,2,0.5\n"
    for name in ("t.csv", "t.csv.gz"):
        archs, lat, other = read_latency_csv(_write(tmp_path / name, text))
        assert archs == ["a", "b"]
        assert set(lat) == {"cpu_a", "gpu_1"}
        np.testing.assert_array_equal(lat["cpu_a"], [1.5, 2.0])
        np.testing.assert_array_equal(other["c10_acc"], [90.5, 80.0])
        np.testing.assert_array_equal(other["idx"], [0, 1])


def test_read_latency_csv_ops_column(tmp_path):
    archs, lat, _ = read_latency_csv(_write(tmp_path / "f.csv", "ops,lat_x_ms\nk3_e1|skip,3.0\n"))
    assert archs == ["k3_e1|skip"] and lat["x"][0] == 3.0


def test_rows_are_put_in_index_order(tmp_path):
    text = "idx,arch,c10_acc,c100_acc,in16_acc,lat_d_ms\n1,b,2,3,4,5\n0,a,6,7,8,9\n"
    t = load_nb201(_write(tmp_path / "n.csv", text))
    assert t.archs == ["a", "b"]
    np.testing.assert_array_equal(t.accuracy["cifar10"], [6, 2])
    np.testing.assert_array_equal(t.latency_ms["d"], [9, 5])


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("arch,lat_d_ms\n", "no rows"),
        ("idx,name,lat_d_ms\n0,a,1.0\n", "'arch' or 'ops'"),
        ("arch,lat_d_ms\na,fast\n", "'lat_d_ms' line 2 holds 'fast'"),
        ("arch,lat_d_ms\na,1\nb,\n", "'lat_d_ms' line 3 holds ''"),
        ("arch,lat_d_ms\na,nan\n", "finite number"),
        ("arch,lat_d_ms\na,1,2\n", "line 2 has 3 fields"),
        ("arch,c10_acc\na,1\n", "no latency columns"),
        ("arch,lat_d_ms,lat_d_ms\na,1,2\n", "duplicate columns"),
        ("arch,lat_d_ms\n,1\n", "empty 'arch'"),
    ],
)
def test_read_latency_csv_errors(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        read_latency_csv(_write(tmp_path / "bad.csv", text))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_nb201(tmp_path / "nope.csv.gz")
    with pytest.raises(DataError, match="not found"):
        load_fbnet(tmp_path / "nope.csv")


def test_not_gzip(tmp_path):
    fake = tmp_path / "fake.csv.gz"
    fake.write_bytes(b"arch,lat_d_ms\na,1\n")
    with pytest.raises(DataError, match="cannot read"):
        read_latency_csv(fake)


def test_nb201_specific_errors(tmp_path):
    with pytest.raises(DataError, match=r"lacks accuracy columns \['c100_acc', 'in16_acc'\]"):
        load_nb201(_write(tmp_path / "a.csv", "arch,c10_acc,lat_d_ms\na,1,2\n"))
    with pytest.raises(DataError, match="duplicate architecture"):
        load_nb201(_write(tmp_path / "b.csv", "arch,c10_acc,c100_acc,in16_acc,lat_d_ms\na,1,1,1,1\na,2,2,2,2\n"))
    with pytest.raises(DataError, match="not a permutation"):
        load_nb201(_write(tmp_path / "c.csv", "idx,arch,c10_acc,c100_acc,in16_acc,lat_d_ms\n0,a,1,1,1,1\n5,b,2,2,2,2\n"))


def test_bundled_copies_match_shared_data(shared_data):
    from nas.tabular import DATA_DIR

    for name in ("nb201.csv.gz", "fbnet.csv.gz"):
        assert (DATA_DIR / name).read_bytes() == (shared_data / name).read_bytes(), name
