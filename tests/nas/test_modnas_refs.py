"""Reference architectures, device embeddings and reference-latency files."""

import re

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError
from nas.search.modnas.refs import ReferenceSet, device_embedding, nb201_is_live, select_references
from nas.spaces import NB201Space
from nas.tabular import load_nb201

SPACE = NB201Space()


def test_embedding_is_scale_free_centred_and_checked():
    lat = np.array([2.0, 4.0, 8.0, 3.0])
    e = device_embedding(lat)
    assert e.dtype == np.float32 and abs(float(e.sum())) < 1e-6
    assert np.allclose(device_embedding(lat * 7.5), e)  # a uniformly faster device looks the same
    assert not np.allclose(device_embedding(lat ** 2), e)  # a wider spread does not
    assert e[2] - e[0] == pytest.approx(np.log(4.0))
    with pytest.raises(DataError, match="expected latencies of 5"):
        device_embedding(lat, expected=5)
    with pytest.raises(DataError, match="finite positive"):
        device_embedding([1.0, 0.0, 2.0])
    with pytest.raises(DataError, match="1-D"):
        device_embedding(np.ones((2, 2)))
    with pytest.raises(DataError, match=r"reference latency 1 is 1e\+300 ms; expected milliseconds up to 1e\+06"):
        device_embedding([1.0, 1e300, 2.0])


@pytest.mark.parametrize(
    "spec, live",
    [
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", False),
        ("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", True),  # direct input -> output edge
        ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|", False),  # node 2 is cut off
        ("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|", True),
    ],
)
def test_nb201_liveness(spec, live):
    assert nb201_is_live(spec) is live


def test_reference_selection_is_deterministic_diverse_and_live():
    t = load_nb201()
    archs = t.archs[:3000]
    lat = {d: t.latency_ms[d][:3000] for d in ("1080ti_1", "pixel3", "silver_4114")}
    a = select_references("nb201", archs, lat, 8, nb201_is_live)
    b = select_references("nb201", archs, lat, 8, nb201_is_live)
    assert a == b and len(a) == 8 and len(set(a.specs)) == 8
    assert all(nb201_is_live(s) for s in a.specs)
    assert "farthest-point" in a.method and "pixel3" in a.method
    # farthest-point picks spread: their latencies cover most of the range on every device
    idx = [archs.index(s) for s in a.specs]
    for col in lat.values():
        assert np.ptp(np.log(col[idx])) > 0.6 * np.ptp(np.log(col[[i for i, s in enumerate(archs) if nb201_is_live(s)]]))
    # another seed starts elsewhere
    assert select_references("nb201", archs, lat, 8, nb201_is_live, seed=1) != a
    with pytest.raises(ConfigError, match=">= 2"):
        select_references("nb201", archs, lat, 1)
    with pytest.raises(DataError, match="latencies for 3000"):
        select_references("nb201", archs, {"x": np.ones(5)}, 4)


def test_reference_set_round_trip_and_table_lookup():
    t = load_nb201()
    refs = ReferenceSet("nb201", (t.archs[5], t.archs[9], t.archs[1]), "test")
    assert ReferenceSet.from_json(refs.to_json()) == refs
    lat = refs.latencies_from_table(t.archs, t.latency_ms["gold_6240"])
    assert lat.tolist() == [t.latency_ms["gold_6240"][i] for i in (5, 9, 1)]
    with pytest.raises(ConfigError, match="distinct"):
        ReferenceSet("nb201", (t.archs[1], t.archs[1]), "dup")
    with pytest.raises(DataError, match="malformed"):
        ReferenceSet.from_json({"space": "nb201"})


def _refs() -> ReferenceSet:
    t = load_nb201()
    return ReferenceSet("nb201", tuple(t.archs[i] for i in (0, 1, 2)), "test")


def test_read_reference_latencies(tmp_path):
    refs = _refs()
    f = tmp_path / "lat.csv"
    # header, rows out of order, spaces around the spec (an extra architecture is refused: see below)
    f.write_text(f"arch,latency_ms\n{refs.specs[2]},3.5\n {refs.specs[0]} ,1.25\n{refs.specs[1]},2\n")
    assert refs.read_latencies(f, SPACE).tolist() == [1.25, 2.0, 3.5]
    f.write_text(f"{refs.specs[0]},1\n{refs.specs[1]},2\n{refs.specs[2]},3\n")  # no header
    assert refs.read_latencies(f, SPACE).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "rows, message",
    [
        (["{0},1", "{1},2"], "lacks 1 of the 3 reference architectures, first reference 2"),
        (["{0},1", "{1},2", "{2},x"], "expected a number of milliseconds"),
        (["{0},1", "{1},2", "{2},-3"], "finite positive"),
        (["{0},1", "{1},2", "{2},3", "{2},4"], "appears more than once"),
        (["{0}"], "expected the header 'arch,latency_ms'"),
        (["{0},1", "{1},2", "|nor_conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|,3"],
         r"lacks 1 of the 3 .* \(1 row\(s\) are not nb201 architectures, e.g. row 3 '\|nor_conv_9x9"),
        # every reference present, and more: the extra rows are refused, the first one named by its line
        (["arch,latency_ms", "{2},3.5", "{3},9", "{0},1.25", "{1},2"],
         r"line 3 '{3}' is not a reference architecture \(1 such row\(s\)\); expected only the 3 references"),
        (["{0},1", "{1},2", "{2},3", "|nor_conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|,3"],
         r"line 4 '\|nor_conv_9x9.*' is not a nb201 architecture: .*expected only the 3 references"),
        # an absurd latency would make the embedding (and every prediction) infinite
        (["{0},1e300", "{1},2", "{2},3"], r"line 1 has latency 1e\+300 ms; expected milliseconds up to 1e\+06"),
    ],
)
def test_bad_reference_latency_files(tmp_path, rows, message):
    refs = _refs()
    specs = (*refs.specs, load_nb201().archs[10])  # {3}: an NB201 network that is not a reference
    f = tmp_path / "lat.csv"
    f.write_text("\n".join(r.format(*specs) for r in rows) + "\n")
    message = message.replace("{3}", re.escape(specs[3]))
    with pytest.raises(DataError, match=message):
        refs.read_latencies(f, SPACE)
    with pytest.raises(DataError, match="not found"):
        refs.read_latencies(tmp_path / "missing.csv", SPACE)
