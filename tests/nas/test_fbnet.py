import csv
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwprof.errors import ConfigError, InvalidArchitecture
from hwprof.testing import check_space
from hwprof.registry import get_space
from hwprof.types import Architecture
from nas.spaces import FBNetSpace, SearchSpace
from nas.spaces import fbnet
from nas.spaces.fbnet import OPS, layer_plans

BUNDLED = Path(fbnet.__file__).parents[1] / "data" / "fbnet.csv.gz"  # the copy shipped in the package


def _uniform(op: str) -> str:
    return "|".join([op] * 22)


def _skip_but(layer: int, op: str) -> str:
    ops = ["skip"] * 22
    ops[layer] = op
    return "|".join(ops)


ALL_SKIP = _uniform("skip")
ALL_K5_E6 = _uniform("k5_e6")
ALL_K3_E1 = _uniform("k3_e1")


@pytest.fixture(scope="module")
def torch():
    """torch on one thread: these nets are tiny, and OpenMP workers spinning on a busy machine cost seconds."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def space():
    return FBNetSpace()


@pytest.fixture(scope="module")
def rows():
    with gzip.open(BUNDLED, "rt", newline="") as f:
        return [r["ops"] for r in csv.DictReader(f)]


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_structure(space):
    assert isinstance(space, SearchSpace) and space.name == "fbnet"
    assert [n for n, _ in space.layers] == [f"layer{i}" for i in range(22)]
    expected = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
    assert all(opts == expected for _, opts in space.layers)
    assert space.size == 9**22 and space.encoding_width == 198
    assert space.input_shape == (1, 3, 32, 32)
    assert FBNetSpace(input_size=64, batch_size=4).input_shape == (4, 3, 64, 64)
    assert isinstance(get_space("fbnet", num_classes=10), FBNetSpace)


def test_layer_plans_follow_hw_nas_bench_cifar_setting():
    plans = layer_plans()
    assert len(plans) == 22
    widths = [16] + [24] * 4 + [32] * 4 + [64] * 4 + [112] * 4 + [184] * 4 + [352]
    assert [p.c_out for p in plans] == widths
    assert [p.c_in for p in plans] == [16] + widths[:-1]
    assert [i for i, p in enumerate(plans) if p.stride == 2] == [5, 9, 17]


def test_every_benchmark_row_parses_and_round_trips(space, rows):
    assert len(rows) == 5000
    for spec in rows:
        choices = space.choices_from_spec(spec)
        assert len(choices) == 22
        assert space.spec_from_choices(choices) == spec
        assert space.parse(spec).spec == spec
    first = space.choices_from_spec(rows[0])
    assert [OPS[c] for c in first][:3] == ["k5_e6", "skip", "k3_e1_g2"]


@pytest.mark.parametrize(
    "spec, match",
    [
        ("|".join(["k3_e1"] * 21), "expected 22 ops joined by '|', got 21"),
        ("|".join(["k3_e1"] * 23), "got 23"),
        (ALL_K3_E1 + "|", "got 23"),
        ("", "got 1"),
        (_skip_but(7, "k7_e6"), r"unknown op 'k7_e6' at position 7 \(layer7\); allowed: k3_e1, k3_e1_g2, .*, skip"),
        (_skip_but(0, "K3_E1"), "unknown op 'K3_E1' at position 0"),
        (_skip_but(21, ""), "unknown op '' at position 21"),
        (ALL_SKIP.replace("|", ",", 1), "got 21"),
    ],
)
def test_parser_is_strict(space, spec, match):
    with pytest.raises(InvalidArchitecture, match=match):
        space.choices_from_spec(spec)


def test_invalid_choices_input_and_foreign_arch(space):
    with pytest.raises(InvalidArchitecture, match="must be a string"):
        space.choices_from_spec(["skip"] * 22)
    with pytest.raises(InvalidArchitecture, match="expected 22 choices"):
        space.spec_from_choices([0] * 21)
    with pytest.raises(InvalidArchitecture, match="out of range"):
        space.from_choices([0] * 21 + [9])
    with pytest.raises(InvalidArchitecture, match="belongs to space 'nb201'"):
        space.build(Architecture("nb201", ALL_SKIP))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_classes": 0}, "num_classes"), ({"input_size": 32.0}, "input_size"), ({"batch_size": True}, "batch_size")],
)
def test_constructor_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FBNetSpace(**kwargs)


def test_sample_and_encode(space):
    archs = space.sample(300, np.random.default_rng(0))
    assert len(set(archs)) == 300
    assert archs == space.sample(300, np.random.default_rng(0))
    x = space.encode(archs)
    assert x.shape == (300, 198)
    np.testing.assert_array_equal(x.sum(axis=1), np.full(300, 22.0))
    names = space.encoding_names()
    ops = archs[0].spec.split("|")
    assert [names[i] for i in np.flatnonzero(x[0])] == [f"layer{i}={op}" for i, op in enumerate(ops)]


def test_parameter_counts_by_hand(space, torch):
    # All-skip network, 100 classes (convs have no bias; BN has weight+bias = 2C):
    #   stem 3x3 conv 3*16*9=432 + BN 32                                 =     464
    #   skip is the identity in 16 layers; a 1x1 conv (+BN) where width or stride changes:
    #     layer1  16->24:   384 +  48 =    432
    #     layer5  24->32:   768 +  64 =    832
    #     layer9  32->64:  2048 + 128 =  2,176
    #     layer13 64->112: 7168 + 224 =  7,392
    #     layer17 112->184: 20608 + 368 = 20,976
    #     layer21 184->352: 64768 + 704 = 65,472                       =  97,280
    #   head 1x1 conv 352*1504=529,408 + BN 3,008                        = 532,416
    #   classifier 1504*100 + 100                                        = 150,500
    #   total                                                             = 780,660
    base = 780_660
    assert _n_params(space.build(space.parse(ALL_SKIP))) == base
    # Blocks replacing an identity skip at layer2 (24->24, stride 1):
    #   k3_e1:    1x1 24*24=576 +48, dw 24*9=216 +48, 1x1 576 +48              = 1,512
    #   k3_e1_g2: 1x1 24*24/2=288 +48, dw 216 +48, 1x1 288 +48                 =   936
    #   k5_e6:    1x1 24*144=3456 +288, dw 144*25=3600 +288, 1x1 3456 +48      = 11,136
    assert _n_params(space.build(space.parse(_skip_but(2, "k3_e1")))) == base + 1_512
    assert _n_params(space.build(space.parse(_skip_but(2, "k3_e1_g2")))) == base + 936
    assert _n_params(space.build(space.parse(_skip_but(2, "k5_e6")))) == base + 11_136
    # At layer1 (16->24) the expansion is on the input width (6*16=96, not 6*24):
    #   1x1 16*96=1536 +192, dw 96*9=864 +192, 1x1 96*24=2304 +48 = 5,136, replacing the 432 skip conv.
    assert _n_params(space.build(space.parse(_skip_but(1, "k3_e6")))) == base - 432 + 5_136
    assert _n_params(FBNetSpace(num_classes=10).build(space.parse(ALL_SKIP))) == base - 150_500 + 15_050


def test_forward_shapes_and_eval_mode(space, torch, rows):
    x = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
    for spec in (rows[0], rows[1], ALL_SKIP, ALL_K5_E6, _uniform("k3_e1_g2")):
        model = space.build(space.parse(spec), seed=0)
        assert not model.training
        with torch.no_grad():
            y = model(x)
        assert y.shape == (1, 100) and torch.isfinite(y).all()
    other = FBNetSpace(num_classes=10, input_size=64, batch_size=2)
    with torch.no_grad():
        y = other.build(other.parse(rows[0]), seed=0)(torch.randn(other.input_shape))
    assert y.shape == (2, 10)


def test_resolution_and_width_per_layer(space, torch, rows):
    model = space.build(space.parse(rows[0]), seed=0)
    shapes = []
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for layer in model.layers]
    hooks.append(model.head.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape[1:]))))
    with torch.no_grad():
        model(torch.zeros(space.input_shape))
    for h in hooks:
        h.remove()
    sizes = [32] * 5 + [16] * 4 + [8] * 8 + [4] * 5
    assert shapes[:22] == [(p.c_out, s, s) for p, s in zip(layer_plans(), sizes)]
    assert shapes[22] == (352, 4, 4)


def test_residual_only_where_shapes_match(space, torch):
    """With the last BN zeroed, a residual block returns its input and any other block returns zeros."""
    model = space.build(space.parse(ALL_K3_E1), seed=0)
    with torch.no_grad():
        for i in (1, 2, 5):
            last_bn = model.layers[i].body[-1]
            last_bn.weight.zero_()
            last_bn.bias.zero_()
        z24 = torch.randn(1, 24, 32, 32)
        torch.testing.assert_close(model.layers[2](z24), z24)
        out1 = model.layers[1](torch.randn(1, 16, 32, 32))
        out5 = model.layers[5](z24)
    assert out1.shape == (1, 24, 32, 32) and torch.count_nonzero(out1) == 0
    assert out5.shape == (1, 32, 16, 16) and torch.count_nonzero(out5) == 0


def test_skip_is_identity_or_projection(space, torch):
    model = space.build(space.parse(ALL_SKIP), seed=0)
    kinds = [type(layer).__name__ for layer in model.layers]
    projections = [i for i, k in enumerate(kinds) if k != "Identity"]
    assert projections == [1, 5, 9, 13, 17, 21]
    assert [type(m).__name__ for m in model.layers[5]] == ["Conv2d", "BatchNorm2d", "ReLU"]
    conv = model.layers[5][0]
    assert (conv.kernel_size, conv.stride, conv.in_channels, conv.out_channels) == ((1, 1), (2, 2), 24, 32)


def test_group_blocks_shuffle_between_pointwise_and_depthwise(space, torch):
    block = space.build(space.parse(_skip_but(2, "k5_e1_g2")), seed=0).layers[2]
    kinds = [type(m).__name__ for m in block.body]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "ChannelShuffle", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]
    assert [(c.groups, c.kernel_size) for c in block.body if isinstance(c, torch.nn.Conv2d)] == [(2, (1, 1)), (24, (5, 5)), (2, (1, 1))]
    shuffle = block.body[3]
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert shuffle(x).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_space_conformance(space, torch, rows):
    check_space(space, [rows[3], rows[4]])


def _macs(model, torch, input_shape) -> int:
    total = 0

    def count(m, inputs, out):
        nonlocal total
        if isinstance(m, torch.nn.Conv2d):
            kh, kw = m.kernel_size
            total += out.numel() * (m.in_channels // m.groups) * kh * kw
        else:
            total += out.numel() * m.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(input_shape))
    for h in hooks:
        h.remove()
    return total


def test_macs_grow_with_kernel_and_expansion(space, torch):
    macs = {op: _macs(space.build(space.parse(_uniform(op))), torch, space.input_shape) for op in ("k3_e1", "k3_e1_g2", "k5_e6", "skip")}
    assert macs["k5_e6"] > 3 * macs["k3_e1"]
    assert macs["skip"] < macs["k3_e1_g2"] < macs["k3_e1"]
    # All-skip by hand: stem 32*32*16*27 = 442,368; projections 32*32*384 + 16*16*768 + 8*8*2048
    # + 8*8*7168 + 4*4*20608 + 4*4*64768 = 393,216 + 196,608 + 131,072 + 458,752 + 329,728 + 1,036,288;
    # head 4*4*529,408 = 8,470,528; classifier 150,400.
    assert macs["skip"] == 442_368 + 2_545_664 + 8_470_528 + 150_400


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter announces its retirement
def test_onnx_export_matches_torch(space, torch, rows, tmp_path):
    import onnx
    import onnxruntime as ort

    model = space.build(space.parse(rows[0]), seed=0)  # has g2 blocks, a projection skip and identity skips
    path = tmp_path / "fbnet.onnx"
    torch.onnx.export(model, (torch.zeros(space.input_shape),), str(path), dynamo=False, input_names=["x"], output_names=["y"])
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [1, 100]
    x = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # The benchmark's init makes logits tiny, so also demand agreement relative to their scale.
    assert np.abs(got - expected).max() <= 1e-3 * np.abs(expected).max()


def test_import_does_not_load_torch():
    code = (
        "import sys, numpy as np, nas.spaces.fbnet as f, nas.spaces; s = f.FBNetSpace(); "
        "s.encode(s.sample(3, np.random.default_rng(0))); s.parse('|'.join(['skip'] * 22)); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
