"""Guards for the auto_LiRPA 0.3 compatibility patches (nnassure/lirpa_compat.py).

1. Each of the four patches is present and does what it should.
2. The patched auto_LiRPA gives the bounds of the upstream 0.3 algorithm: they are compared with an
   independent float64 numpy implementation of IBP and CROWN for ReLU MLPs written below, on seeded
   networks (float64 auto_LiRPA, as the pipeline's BoundEngine runs it: to ~1e-12; float32: to ~1e-5), on a
   hand-computed network, and on the stored reference file tests/data/lirpa_reference.json
   (weights, inputs and bounds), like auto_LiRPA's own tests.

Regenerate the stored file with ``.venv/bin/python tests/test_lirpa_compat.py`` (only when the
reference implementation itself is deliberately changed).
"""

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nnassure.certify.bounds import BoundEngine
from nnassure.lirpa_compat import auto_lirpa

REFERENCE_FILE = Path(__file__).parent / "data" / "lirpa_reference.json"


# ----------------------------------------------------------------------------------------------------
# Independent float64 reference of auto_LiRPA 0.3's IBP and CROWN ("backward") for ReLU MLPs.
#
# Network: z_1 = W_1 x + b_1, h_k = relu(z_k), z_{k+1} = W_{k+1} h_k + b_{k+1}; the output is z_L.
# Input set: the Linf box [x_L, x_U] (centre/radius concretisation) or the L2 ball of radius eps
# around x (dual norm: A x +- ||A||_2 eps).
# CROWN: bounds of every pre-activation by back-substitution to the input through the linear
# relaxation of each earlier ReLU with bounds [l, u]:
#   upper  h <= d (z - l), d = u / (u - l)  for unstable neurons (l < 0 < u),
#   lower  h >= a z,       a = 1 if u > -l else 0  (auto_LiRPA "adaptive": lower_d = (upper_d > 0.5)),
#   stable neurons exact (d = a = 1 if l >= 0; d = a = 0 if u <= 0).
# Like auto_LiRPA 0.3 (bound_opts sparse_intermediate_bounds=True, the default), the first layer
# and the neurons that one IBP step from the previous bounds proves stable for every sample of the
# batch keep that interval bound; all others get the CROWN bound. (Stable neurons are relaxed
# exactly whatever their bounds, so this only matters when CROWN and IBP disagree on stability.)
# ----------------------------------------------------------------------------------------------------


def _relu_relaxation(lower, upper):
    """Slopes (lower a, upper d) and upper intercept of auto_LiRPA 0.3's BoundRelu._relu_upper_bound."""
    lower_r = np.minimum(lower, 0.0)
    upper_r = np.maximum(np.maximum(upper, 0.0), lower_r + 1e-8)
    slope_upper = upper_r / (upper_r - lower_r)
    intercept_upper = -lower_r * slope_upper
    slope_lower = (slope_upper > 0.5).astype(np.float64)
    return slope_lower, slope_upper, intercept_upper


def _concretize(A, const, domain):
    """Bounds of A x + const (A: (batch, m, d)) over the input set."""
    if domain["norm"] == "linf":
        centre = (domain["x_U"] + domain["x_L"]) / 2
        radius = (domain["x_U"] - domain["x_L"]) / 2
        mid = np.einsum("bmd,bd->bm", A, centre)
        dev = np.einsum("bmd,bd->bm", np.abs(A), radius)
    else:
        mid = np.einsum("bmd,bd->bm", A, domain["x"])
        dev = np.linalg.norm(A, axis=2) * domain["eps"][:, None]
    return mid - dev + const, mid + dev + const


def _crown_backward(weights, biases, k, pre, domain):
    """CROWN bounds of z_{k+1} (``weights[k]``) from the pre-activation bounds ``pre[0..k-1]``."""
    batch = domain["x"].shape[0]
    A_low = np.broadcast_to(weights[k], (batch, *weights[k].shape)).copy()
    A_up = A_low.copy()
    c_low = np.broadcast_to(biases[k], (batch, len(biases[k]))).copy()
    c_up = c_low.copy()
    for j in range(k - 1, -1, -1):
        slope_lower, slope_upper, intercept = _relu_relaxation(*pre[j])
        pos, neg = np.maximum(A_low, 0), np.minimum(A_low, 0)
        c_low = c_low + np.einsum("bmn,bn->bm", neg, intercept)
        A_low = pos * slope_lower[:, None, :] + neg * slope_upper[:, None, :]
        pos, neg = np.maximum(A_up, 0), np.minimum(A_up, 0)
        c_up = c_up + np.einsum("bmn,bn->bm", pos, intercept)
        A_up = pos * slope_upper[:, None, :] + neg * slope_lower[:, None, :]
        c_low = c_low + np.einsum("bmn,n->bm", A_low, biases[j])
        c_up = c_up + np.einsum("bmn,n->bm", A_up, biases[j])
        A_low = np.einsum("bmn,nd->bmd", A_low, weights[j])
        A_up = np.einsum("bmn,nd->bmd", A_up, weights[j])
    return _concretize(A_low, c_low, domain)[0], _concretize(A_up, c_up, domain)[1]


def _ibp_step(weight, bias, lower, upper):
    h_low, h_up = np.maximum(lower, 0), np.maximum(upper, 0)
    mid = (h_low + h_up) / 2 @ weight.T + bias
    dev = (h_up - h_low) / 2 @ np.abs(weight).T
    return mid - dev, mid + dev


def make_domain(x, eps, norm, clip=None):
    x = np.asarray(x, np.float64)
    eps = np.broadcast_to(np.asarray(eps, np.float64), (len(x),)).copy()
    if norm == "l2":
        return {"norm": "l2", "x": x, "eps": eps}
    x_L, x_U = x - eps[:, None], x + eps[:, None]
    if clip is not None:
        x_L, x_U = np.maximum(x_L, clip[0]), np.minimum(x_U, clip[1])
    return {"norm": "linf", "x": x, "x_L": x_L, "x_U": x_U}


def reference_bounds(weights, biases, domain, method):
    """(lower, upper) of the network output, shape (batch, outputs), by IBP or CROWN, in float64."""
    weights = [np.asarray(w, np.float64) for w in weights]
    biases = [np.asarray(b, np.float64) for b in biases]
    batch = domain["x"].shape[0]
    first = np.broadcast_to(weights[0], (batch, *weights[0].shape))
    pre = [_concretize(first, biases[0], domain)]  # exact for a linear layer (IBP = CROWN)
    for k in range(1, len(weights)):
        ibp_lower, ibp_upper = _ibp_step(weights[k], biases[k], *pre[-1])
        if method == "ibp":
            pre.append((ibp_lower, ibp_upper))
        elif k == len(weights) - 1:
            pre.append(_crown_backward(weights, biases, k, pre, domain))
        else:
            unstable = ((ibp_lower < 0) & (ibp_upper > 0)).any(0)
            lower, upper = ibp_lower.copy(), ibp_upper.copy()
            if unstable.any():
                crown_lower, crown_upper = _crown_backward(weights, biases, k, pre, domain)
                lower[:, unstable], upper[:, unstable] = crown_lower[:, unstable], crown_upper[:, unstable]
            pre.append((lower, upper))
    return pre[-1]


# ----------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------


def seeded_layers(widths, seed):
    """float32-valued weights/biases of a 2 -> widths -> 1 MLP, PyTorch-like uniform init (numpy rng)."""
    rng = np.random.default_rng(seed)
    sizes = [2, *widths, 1]
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1 / math.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32).astype(np.float64))
        biases.append(rng.uniform(-bound, bound, fan_out).astype(np.float32).astype(np.float64))
    return weights, biases


def torch_mlp(weights, biases, dtype):
    layers = []
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        linear = nn.Linear(w.shape[1], w.shape[0]).to(dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(w, dtype=dtype))
            linear.bias.copy_(torch.as_tensor(b, dtype=dtype))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def seeded_inputs(seed, n=12):
    return np.random.default_rng(seed).uniform(0, 1, (n, 2)).astype(np.float32).astype(np.float64)


def lirpa_float64_bounds(network, domain, method):
    """auto_LiRPA (patched) directly on a float64 network."""
    lirpa = auto_lirpa()
    bounded = lirpa.BoundedModule(network, torch.zeros(1, network[0].in_features, dtype=torch.float64),
                                  device="cpu", verbose=False)
    x = torch.as_tensor(domain["x"])
    if domain["norm"] == "linf":
        eps = torch.as_tensor((domain["x_U"] - domain["x_L"]).max(1, keepdims=True) / 2)
        ptb = lirpa.PerturbationLpNorm(norm=math.inf, eps=eps, x_L=torch.as_tensor(domain["x_L"]),
                                       x_U=torch.as_tensor(domain["x_U"]))
    else:
        ptb = lirpa.PerturbationLpNorm(norm=2.0, eps=torch.as_tensor(domain["eps"][:, None]))
    with torch.no_grad():
        lower, upper = bounded.compute_bounds(x=(lirpa.BoundedTensor(x, ptb),),
                                              method={"ibp": "IBP", "crown": "backward"}[method])
    assert lower.dtype == torch.float64
    return lower.numpy(), upper.numpy()


# ----------------------------------------------------------------------------------------------------
# 1. The four patches
# ----------------------------------------------------------------------------------------------------


def test_auto_lirpa_is_importable_and_idempotent():
    first = auto_lirpa()
    assert first is auto_lirpa()
    assert first.BoundedModule._named_members._nnassure_patched
    assert first.BoundedModule._named_members is auto_lirpa().BoundedModule._named_members


def test_patch_opset_setter():
    auto_lirpa()
    import torch.onnx.symbolic_helper as symbolic_helper
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

    assert callable(symbolic_helper._set_opset_version)
    old = GLOBALS.export_onnx_opset_version
    try:
        for version in (11, 13):
            symbolic_helper._set_opset_version(version)
            assert GLOBALS.export_onnx_opset_version == version
    finally:
        GLOBALS.export_onnx_opset_version = old


def test_patch_node_getitem():
    auto_lirpa()
    assert hasattr(torch._C.Node, "__getitem__")
    graph = torch.jit.trace(lambda x: torch.nn.functional.linear(x, torch.ones(2, 2)) * 2.5,
                            torch.zeros(1, 2)).graph
    seen = set()
    for node in graph.nodes():
        for key in node.attributeNames():
            kind = node.kindOf(key)
            value = node[key]
            expected = getattr(node, kind)(key)
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, expected)
            else:
                assert value == expected
            seen.add(kind)
    assert {"i", "t"} <= seen  # integer and tensor attributes are both read


def test_patch_numpy_arraysetops():
    auto_lirpa()
    arraysetops = importlib.import_module("numpy.lib.arraysetops")
    np.testing.assert_array_equal(arraysetops.isin(np.array([1, 2, 3, 4]), [2, 4]), [False, True, False, True])


def test_patch_named_members(random_mlp):
    lirpa = auto_lirpa()
    network = random_mlp([8, 4], seed=0)
    bounded = lirpa.BoundedModule(network, torch.zeros(1, 2), device="cpu", verbose=False)
    named = list(bounded.named_parameters())
    assert len(named) == len(list(network.parameters())) == 6
    assert sum(p.numel() for _, p in named) == sum(p.numel() for p in network.parameters())
    assert len(list(bounded.parameters())) == 6
    assert len(list(bounded._named_members(lambda m: m._parameters.items(), remove_duplicate=False))) == 6
    # The bounded module computes the same function.
    x = torch.rand(5, 2)
    with torch.no_grad():
        torch.testing.assert_close(bounded(x), network(x))


# ----------------------------------------------------------------------------------------------------
# 2. Bounds against the reference
# ----------------------------------------------------------------------------------------------------


def test_reference_on_hand_computed_network():
    # y = relu(x1 + x2) + relu(x1 - x2) around x = (0.5, 0) with eps = 0.5.
    weights = [np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([[1.0, 1.0]])]
    biases = [np.zeros(2), np.zeros(1)]
    x = np.array([[0.5, 0.0]])
    # Linf: z1, z2 in [-0.5, 1.5]; IBP: y in [0, 3]. CROWN: lower slope 1 (1.5 > 0.5): y >= z1 + z2 = 2 x1 >= 0;
    # upper slope 1.5/2 = 0.75, intercept 0.75 * 0.5 = 0.375: y <= 1.5 x1 + 0.75 <= 2.25. (True range [0, 2].)
    # L2: z in [0.5 - s, 0.5 + s], s = 0.5 sqrt(2); IBP upper 2 (0.5 + s) = 2.414213562373095;
    # CROWN upper (0.5 + s) / s + 2 * 0.25 / (2 s) = 1.7071067811865475 + 0.3535533905932738 = 2.0606601717798214.
    expected = {
        ("linf", "ibp"): (0.0, 3.0),
        ("linf", "crown"): (0.0, 2.25),
        ("l2", "ibp"): (0.0, 2.414213562373095),
        ("l2", "crown"): (0.0, 2.0606601717798214),
    }
    for (norm, method), (lower, upper) in expected.items():
        domain = make_domain(x, 0.5, norm)
        ref = reference_bounds(weights, biases, domain, method)
        np.testing.assert_allclose([ref[0][0, 0], ref[1][0, 0]], [lower, upper], atol=1e-7)
        got = lirpa_float64_bounds(torch_mlp(weights, biases, torch.float64), domain, method)
        np.testing.assert_allclose([got[0][0, 0], got[1][0, 0]], [lower, upper], atol=1e-7)
        engine = BoundEngine(torch_mlp(weights, biases, torch.float32), 2)
        lo, up = engine.bounds(x.astype(np.float32), 0.5, norm, method)
        np.testing.assert_allclose([lo.item(), up.item()], [lower, upper], atol=1e-6)


def test_reference_is_sound():
    # The reference's bounds contain the float64 network output at points of the set (it is a bound).
    weights, biases = seeded_layers([16, 16], seed=3)
    network = torch_mlp(weights, biases, torch.float64)
    x = seeded_inputs(3, n=4)
    rng = np.random.default_rng(0)
    for norm in ("linf", "l2"):
        domain = make_domain(x, 0.2, norm)
        for method in ("ibp", "crown"):
            lower, upper = reference_bounds(weights, biases, domain, method)
            for i in range(len(x)):
                offsets = rng.uniform(-0.2, 0.2, (2000, 2))
                if norm == "l2":
                    offsets = offsets[np.linalg.norm(offsets, axis=1) <= 0.2]
                with torch.no_grad():
                    out = network(torch.as_tensor(x[i] + offsets)).numpy()
                assert (out >= lower[i] - 1e-12).all() and (out <= upper[i] + 1e-12).all()


SEEDED = [([8], 0), ([16, 16], 1), ([32, 32, 32], 2), ([8, 16, 8], 3)]
SETTINGS = [("linf", 0.05, None), ("linf", 0.2, None), ("linf", 0.2, (0.0, 1.0)), ("l2", 0.05, None),
            ("l2", 0.2, None)]


@pytest.mark.parametrize(("norm", "eps", "clip"), SETTINGS)
@pytest.mark.parametrize(("widths", "seed"), SEEDED)
def test_patched_auto_lirpa_float64_matches_reference(widths, seed, norm, eps, clip):
    weights, biases = seeded_layers(widths, seed)
    network = torch_mlp(weights, biases, torch.float64)
    domain = make_domain(seeded_inputs(seed), eps, norm, clip)
    for method in ("ibp", "crown"):
        lower, upper = lirpa_float64_bounds(network, domain, method)
        ref_lower, ref_upper = reference_bounds(weights, biases, domain, method)
        scale = 1 + np.abs(ref_upper).max()
        np.testing.assert_allclose(lower, ref_lower, rtol=1e-10, atol=1e-12 * scale)
        np.testing.assert_allclose(upper, ref_upper, rtol=1e-10, atol=1e-12 * scale)


@pytest.mark.parametrize(("widths", "seed"), SEEDED)
def test_bound_engine_float32_matches_reference(widths, seed):
    weights, biases = seeded_layers(widths, seed)
    engine = BoundEngine(torch_mlp(weights, biases, torch.float32), 2)
    x = seeded_inputs(seed)
    for norm, eps, clip in SETTINGS:
        domain = make_domain(x, np.float32(eps), norm, clip)
        for method in ("ibp", "crown"):
            lower, upper = engine.bounds(x.astype(np.float32), eps, norm, method, clip)
            ref_lower, ref_upper = reference_bounds(weights, biases, domain, method)
            if clip is not None and method == "crown":
                # BoundEngine keeps the tighter of the clipped and the unclipped CROWN bounds.
                free_lower, free_upper = reference_bounds(
                    weights, biases, make_domain(x, np.float32(eps), norm, None), method)
                ref_lower, ref_upper = np.maximum(ref_lower, free_lower), np.minimum(ref_upper, free_upper)
            scale = np.abs(np.concatenate([ref_lower, ref_upper])).max()
            np.testing.assert_allclose(lower.numpy(), ref_lower, rtol=1e-5, atol=1e-5 * scale)
            np.testing.assert_allclose(upper.numpy(), ref_upper, rtol=1e-5, atol=1e-5 * scale)


# ----------------------------------------------------------------------------------------------------
# 3. Stored reference tensors
# ----------------------------------------------------------------------------------------------------

STORED_NETWORKS = [("net_a", [6, 6], 7), ("net_b", [5, 7, 4], 11)]
STORED_SETTINGS = [
    {"norm": "linf", "eps": 0.05, "clip": None},
    {"norm": "linf", "eps": 0.25, "clip": None},
    {"norm": "linf", "eps": 0.25, "clip": [0.0, 1.0]},
    {"norm": "l2", "eps": 0.05, "clip": None},
    {"norm": "l2", "eps": 0.25, "clip": None},
]


def build_reference_document():
    document = {
        "description": "float64 IBP/CROWN bounds of ReLU MLPs by the numpy reference in tests/test_lirpa_compat.py "
                       "(auto_LiRPA 0.3 algorithm). Layers: z = W h + b, ReLU between layers.",
        "networks": [],
    }
    for name, widths, seed in STORED_NETWORKS:
        weights, biases = seeded_layers(widths, seed)
        x = seeded_inputs(seed, n=6)
        cases = []
        for setting in STORED_SETTINGS:
            domain = make_domain(x, setting["eps"], setting["norm"], setting["clip"])
            for method in ("ibp", "crown"):
                lower, upper = reference_bounds(weights, biases, domain, method)
                cases.append({**setting, "method": method, "lower": lower.tolist(), "upper": upper.tolist()})
        document["networks"].append({
            "name": name,
            "weights": [w.tolist() for w in weights],
            "biases": [b.tolist() for b in biases],
            "inputs": x.tolist(),
            "cases": cases,
        })
    return document


@pytest.fixture(scope="module")
def stored():
    return json.loads(REFERENCE_FILE.read_text())


def test_stored_reference_is_meaningful(stored):
    assert [net["name"] for net in stored["networks"]] == ["net_a", "net_b"]
    for net in stored["networks"]:
        by_key = {(c["norm"], c["eps"], str(c["clip"]), c["method"]): np.array(c["lower"]) for c in net["cases"]}
        assert len(by_key) == 10
        # Unstable ReLUs are present: CROWN differs from IBP, so the relaxation is exercised.
        assert not np.allclose(by_key["linf", 0.25, "None", "crown"], by_key["linf", 0.25, "None", "ibp"])
        assert not np.allclose(by_key["l2", 0.25, "None", "crown"], by_key["l2", 0.25, "None", "ibp"])


def test_reference_implementation_reproduces_stored_bounds(stored):
    for net in stored["networks"]:
        for case in net["cases"]:
            domain = make_domain(np.array(net["inputs"]), case["eps"], case["norm"], case["clip"])
            lower, upper = reference_bounds(net["weights"], net["biases"], domain, case["method"])
            np.testing.assert_allclose(lower, case["lower"], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(upper, case["upper"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("index", [0, 1])
def test_patched_auto_lirpa_reproduces_stored_bounds(stored, index):
    net = stored["networks"][index]
    weights = [np.array(w) for w in net["weights"]]
    biases = [np.array(b) for b in net["biases"]]
    x = np.array(net["inputs"])
    network64 = torch_mlp(weights, biases, torch.float64)
    engine = BoundEngine(torch_mlp(weights, biases, torch.float32), 2)
    for case in net["cases"]:
        expected_lower, expected_upper = np.array(case["lower"]), np.array(case["upper"])
        clip = tuple(case["clip"]) if case["clip"] else None
        domain = make_domain(x, case["eps"], case["norm"], clip)
        lower, upper = lirpa_float64_bounds(network64, domain, case["method"])
        np.testing.assert_allclose(lower, expected_lower, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(upper, expected_upper, rtol=1e-10, atol=1e-12)
        lower, upper = engine.bounds(x.astype(np.float32), case["eps"], case["norm"], case["method"], clip)
        scale = np.abs(np.concatenate([expected_lower, expected_upper])).max()
        np.testing.assert_allclose(lower.numpy(), expected_lower, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(upper.numpy(), expected_upper, rtol=1e-5, atol=1e-5 * scale)


if __name__ == "__main__":
    REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE_FILE.write_text(json.dumps(build_reference_document(), indent=1) + "\n")
    print(f"wrote {REFERENCE_FILE}")
