import csv
import gzip
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from hwprof.errors import ConfigError, InvalidArchitecture
from hwprof.testing import check_space
from hwprof.types import Architecture
from nas.spaces import NB201Space, SearchSpace
from nas.tabular import load_nb201

EXAMPLE = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def _uniform(op: str) -> str:
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


ALL_CONV3 = _uniform("nor_conv_3x3")
ALL_NONE = _uniform("none")
# Official index 0: two nor_conv_1x1 edges per cell.
INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def space():
    return NB201Space()


@pytest.fixture
def torch():
    """torch on one thread: the test machine is shared, and spinning OpenMP threads make
    a 40 ms forward pass take seconds."""
    import torch as module

    threads = module.get_num_threads()
    module.set_num_threads(1)
    yield module
    module.set_num_threads(threads)


@pytest.fixture(scope="module")
def shared_rows(shared_data):
    with gzip.open(shared_data / "nb201.csv.gz", "rt", newline="") as f:
        return [(int(r["idx"]), r["arch"]) for r in csv.DictReader(f)]


def test_structure(space):
    assert isinstance(space, SearchSpace) and space.name == "nb201"
    assert [n for n, _ in space.layers] == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    assert all(opts == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3") for _, opts in space.layers)
    assert space.size == 15625 and space.encoding_width == 30
    assert space.input_shape == (1, 3, 32, 32)
    assert NB201Space(batch_size=4, input_size=16).input_shape == (4, 3, 16, 16)


def test_spec_choices_round_trip(space):
    choices = space.choices_from_spec(EXAMPLE)
    assert choices == (3, 0, 4, 1, 3, 1)
    assert space.spec_from_choices(choices) == EXAMPLE
    assert space.parse("  " + EXAMPLE + "\n").spec == EXAMPLE
    rng = np.random.default_rng(0)
    for arch in space.sample(200, rng):
        assert space.from_choices(space.to_choices(arch)) == arch
        assert space.parse(arch.spec) == arch


@pytest.mark.parametrize(
    "spec, match",
    [
        ("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|", "2 node"),
        (EXAMPLE + "+|none~0|", "4 node"),
        ("nor_conv_3x3~0+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "not enclosed"),
        ("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2", "not enclosed"),
        ("|nor_conv_3x3~0|+|none~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2 has 1 edge"),
        ("|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "expected ~0"),
        ("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~2|skip_connect~1|", "expected ~1"),
        ("|conv_5x5~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "unknown operation 'conv_5x5'"),
        ("|nor_conv_3x3|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "lacks '~"),
        ("", "1 node"),
    ],
)
def test_parser_is_strict(space, spec, match):
    with pytest.raises(InvalidArchitecture, match=match) as info:
        space.choices_from_spec(spec)
    assert "expected the format" in str(info.value)


def test_invalid_choices_and_foreign_arch(space):
    with pytest.raises(InvalidArchitecture, match="expected 6 choices"):
        space.spec_from_choices([0, 1, 2])
    with pytest.raises(InvalidArchitecture, match="out of range"):
        space.from_choices([0, 0, 0, 0, 0, 5])
    with pytest.raises(InvalidArchitecture, match="belongs to space 'toy'"):
        space.index(Architecture("toy", EXAMPLE))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"channels": -16}, "channels"),
        ({"cells_per_stage": 2.5}, "cells_per_stage"),
        ({"batch_size": True}, "batch_size"),
        ({"input_size": 30}, "multiple of 4"),
    ],
)
def test_constructor_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        NB201Space(**kwargs)


def test_index_mapping_matches_benchmark(space, shared_rows):
    assert [i for i, _ in shared_rows] == list(range(15625))
    assert load_nb201().archs == [a for _, a in shared_rows]
    for idx, arch in shared_rows:
        assert space.from_index(idx).spec == arch
        assert space.index(space.parse(arch)) == idx


def test_from_index_range(space):
    assert space.from_index(np.int64(1)).spec == load_nb201().archs[1]
    for bad in (-1, 15625):
        with pytest.raises(InvalidArchitecture, match=r"index must be in 0\.\.15624"):
            space.from_index(bad)
    with pytest.raises(InvalidArchitecture, match="integer"):
        space.from_index(1.5)


def test_enumerate_covers_the_benchmark(space):
    specs = [a.spec for a in space.enumerate()]
    assert len(specs) == 15625 == len(set(specs))
    assert set(specs) == set(load_nb201().archs)


def test_sample_unique_and_uniform(space):
    archs = space.sample(5000, np.random.default_rng(123))
    assert len(set(archs)) == 5000
    assert archs == space.sample(5000, np.random.default_rng(123))
    choices = np.array([space.to_choices(a) for a in archs])
    # 1,000 expected per (edge, op); binomial std is ~28, so +-150 is > 5 sigma.
    for edge in range(6):
        counts = Counter(choices[:, edge].tolist())
        assert sorted(counts) == [0, 1, 2, 3, 4]
        assert all(abs(c - 1000) < 150 for c in counts.values()), counts


def test_encode_one_hot(space):
    archs = [space.parse(EXAMPLE), space.parse(ALL_NONE)]
    x = space.encode(archs)
    assert x.shape == (2, 30)
    np.testing.assert_array_equal(x.sum(axis=1), [6, 6])
    assert set(np.flatnonzero(x[0])) == {0 * 5 + 3, 1 * 5 + 0, 2 * 5 + 4, 3 * 5 + 1, 4 * 5 + 3, 5 * 5 + 1}
    assert set(np.flatnonzero(x[1])) == {0, 5, 10, 15, 20, 25}
    names = space.encoding_names()
    assert [names[i] for i in np.flatnonzero(x[0])] == [
        "1<-0=nor_conv_3x3", "2<-0=none", "2<-1=avg_pool_3x3", "3<-0=skip_connect", "3<-1=nor_conv_3x3", "3<-2=skip_connect",
    ]


def test_genotype(space):
    assert space.genotype(space.parse(EXAMPLE)) == (
        (("nor_conv_3x3", 0),),
        (("none", 0), ("avg_pool_3x3", 1)),
        (("skip_connect", 0), ("nor_conv_3x3", 1), ("skip_connect", 2)),
    )


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_nas_bench_201(space, torch):
    # Hand count, C=16, N=5, 10 classes (BN has weight+bias = 2C; convs have no bias):
    #   stem: conv 3*16*9=432 + BN 32                                    =       464
    #   reduction 16->32: conv_a 16*32*9+64=4672, conv_b 32*32*9+64=9280,
    #                     shortcut 1x1 16*32=512                         =    14,464
    #   reduction 32->64: 32*64*9+128=18560, 64*64*9+128=36992, 32*64=2048 = 57,600
    #   last BN 64*2=128; classifier 64*10+10=650
    #   fixed part (all edges none/skip/pool: no parameters in cells)    =    73,306
    # nor_conv_3x3 edge: 9C^2+2C -> 2,336 / 9,280 / 36,992 at C=16/32/64;
    #   6 edges x 5 cells: 70,080 + 278,400 + 1,109,760 = 1,458,240 -> total 1,531,546
    # nor_conv_1x1 edge: C^2+2C -> 288 / 1,088 / 4,224; index 0 has two per cell:
    #   2*5*(288+1088+4224) = 56,000 -> total 129,306
    # NAS-Bench-201 reports CIFAR-10 params from 0.073306 to 1.531546 MB, and
    # 0.079156 MB minimum for CIFAR-100 (classifier 64*100+100 = 6,500).
    assert _n_params(space.build(space.parse(ALL_CONV3))) == 1_531_546
    assert _n_params(space.build(space.parse(ALL_NONE))) == 73_306
    assert _n_params(space.build(space.parse(_uniform("avg_pool_3x3")))) == 73_306
    assert _n_params(space.build(space.parse(INDEX0))) == 129_306
    assert _n_params(NB201Space(num_classes=100).build(space.parse(ALL_NONE))) == 79_156


def test_forward_shapes_and_eval_mode(space, torch):
    x = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
    for spec in (EXAMPLE, INDEX0, _uniform("skip_connect")):
        model = space.build(space.parse(spec), seed=0)
        assert not model.training
        with torch.no_grad():
            y = model(x)
        assert y.shape == (1, 10) and torch.isfinite(y).all()
    big = NB201Space(num_classes=100, batch_size=2)
    with torch.no_grad():
        y = big.build(big.parse(EXAMPLE), seed=0)(torch.randn(big.input_shape))
    assert y.shape == (2, 100)


def test_all_none_cells_pass_only_the_reduction_path(space, torch):
    model = space.build(space.parse(ALL_NONE), seed=0)
    with torch.no_grad():
        y1 = model(torch.randn(1, 3, 32, 32))
        y2 = model(torch.randn(1, 3, 32, 32) * 10)
    assert torch.isfinite(y1).all()
    # Every cell outputs zeros, so the input cannot reach the classifier.
    assert torch.equal(y1, y2)


def test_cell_semantics(space, torch):
    """Node j sums its live inputs; 'none' edges add nothing; a node without live inputs is zero."""
    F = torch.nn.functional

    def cell(spec):
        return space.build(space.parse(spec), seed=0).cells[0]

    z = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        # node1 = z, node2 = z + z, node3 = z + z + 2z
        assert torch.allclose(cell(_uniform("skip_connect"))(z), 4 * z)
        # node 3 reads only node 0: the convolutions into nodes 1 and 2 are dead.
        identity = cell("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|")
        assert torch.allclose(identity(z), z)
        # node 1 has no live input, so node 3 = skip(node 1) is a zero tensor of z's shape.
        zero = cell("|none~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")(z)
        assert zero.shape == z.shape and torch.count_nonzero(zero) == 0
        # avg_pool_3x3 excludes padding: a constant map stays constant at the borders.
        pool = cell("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
        assert torch.allclose(pool(torch.ones(1, 16, 8, 8)), torch.ones(1, 16, 8, 8))
        assert torch.allclose(pool(z), F.avg_pool2d(z, 3, 1, 1, count_include_pad=False))


def test_space_conformance(space, torch):
    check_space(space, [EXAMPLE, space.from_index(0).spec])


def test_import_does_not_load_torch():
    code = "import sys, nas.spaces.nb201, nas.spaces, nas.tabular; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# dynamo=False is the project's exporter for now; torch warns that it is deprecated.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export(space, torch, tmp_path):
    import onnx
    import onnxruntime as ort

    # Node 1 has no live input (exported as x * 0), 2<-1 and 3<-0 exercise conv and skip.
    spec = "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    model = space.build(space.parse(spec), seed=0)
    path = tmp_path / "nb201.onnx"
    x = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], output_names=["logits"])
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [1, 10]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    (got,) = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-5)
