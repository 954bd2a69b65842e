"""Convolutional classifiers with max-pooling in the ensemble verifier (Gross et al., Sec. 5.2), and the
ensemble's configuration, model files and per-row runs (the report tables are tested in
test_report_ensemble.py).

1. network_layers(ConvNet): the unrolled float64 layer list computes the torch model exactly (HWC inputs,
   1-3 convolutions, grey and RGB), the pooling groups are the windows, unsupported pooling is refused;
2. bounds with pooling: interval and CROWN-over-L1 bounds contain every sampled output, CROWN is never
   looser, and max-pooling rewritten with ReLUs is the maximum;
3. the MILP with pooling is exact: attacks re-check in float64, robust verdicts survive an attack search,
   Z3 agrees; 4. stable ReLUs and fixed pools need no binaries; 5. model files; 6. configuration;
7. run_row. Three regression tests guard bugs these tests found: CROWN bounds of
float32-rounded weights, binaries for a pooling window with a fixed maximum, and eps = 0 with LiRPA bounds.
"""

import copy
import itertools
import json

import numpy as np
import pytest
import torch
from test_ensemble import paper_example, project_l1, sample_l1
from torch import nn

from nnassure.config import compose
from nnassure.ensemble import (
    AttackProblem,
    DenseLayer,
    MaxPoolLayer,
    attack_value,
    check_attack,
    encode,
    find_attack,
    forward,
    interval_bounds,
    network_layers,
)
from nnassure.ensemble.bounds import L1BoundEngine, _pool_as_relus
from nnassure.errors import ConfigError, InputFileError
from nnassure.models import ConvNet, ConvSpec, load_model, save_model

BACKENDS = ["highs", "gurobi"]
TIME_LIMIT = 30.0  # seconds per solve; the instances here solve in well under a second
SMT_TIME_LIMIT = 60.0  # Z3 needs a few seconds on the tiny pooling instance
TOL = 1e-9


def conv_net(spec, seed, normal=False, conv_bias=None):
    """A seeded ConvNet in eval mode, float32 parameters (as trained models have them). ``normal``:
    N(0, 1) weights and biases (more varied decisions than the default init); ``conv_bias``: every
    convolution bias set to this value."""
    torch.manual_seed(seed)
    net = ConvNet(spec).eval()
    with torch.no_grad():
        if normal:
            for parameter in net.parameters():
                parameter.normal_(0.0, 1.0)
        if conv_bias is not None:
            for module in net.features:
                if isinstance(module, nn.Conv2d):
                    module.bias.fill_(conv_bias)
    return net


def torch_logits(net, x):
    """The torch model's logits in float64 (a float64 copy of the network)."""
    with torch.no_grad():
        return copy.deepcopy(net).double()(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def layer_outputs(layers, x):
    """Every layer's output before its ReLU (the pooled values for a MaxPoolLayer), computed here."""
    outputs, a = [], np.asarray(x, dtype=np.float64)
    for layer in layers:
        if isinstance(layer, MaxPoolLayer):
            a = a[:, layer.groups].max(axis=2)
            outputs.append(a)
        else:
            z = a @ layer.weight.T + layer.bias
            outputs.append(z)
            a = np.maximum(z, 0.0) if layer.relu else z
    return outputs


# ---------------------------------------------------------------------------------------------
# 1. network_layers(ConvNet)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("conv_layers", "kernel", "pool"), [(1, 3, 2), (1, 2, 3), (2, 2, 2), (2, 3, 1), (3, 2, 2)])
def test_conv_layers_compute_the_torch_model_in_float64(conv_layers, kernel, pool, channels):
    # non-square, and sizes that the pooling does not divide (some inputs are in no window)
    spec = ConvSpec(9, 8, channels, conv_layers, filters=2, kernel=kernel, pool=pool, hidden=5, outputs=3)
    net = conv_net(spec, seed=10 * conv_layers + channels)
    layers = network_layers(net)
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == ["DenseLayer"] * conv_layers + ["MaxPoolLayer", "DenseLayer", "DenseLayer"]
    assert [layer.relu for layer in layers if isinstance(layer, DenseLayer)] == [True] * (conv_layers + 1) + [False]
    assert all(layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
               for layer in layers if isinstance(layer, DenseLayer))
    assert layers[0].weight.shape[1] == spec.input_dim
    c, h, w = spec.feature_shape()
    assert layers[conv_layers].groups.shape == (c * h * w, pool * pool)
    rng = np.random.default_rng(conv_layers)
    x = np.concatenate([rng.normal(size=(40, spec.input_dim)), rng.uniform(0, 1, (40, spec.input_dim))])
    assert np.abs(forward(layers, x) - torch_logits(net, x)).max() < 1e-12
    # and the float32 model itself, up to float32 rounding
    with torch.no_grad():
        single = net(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    assert np.abs(forward(layers, x) - single).max() < 1e-4


def test_first_layer_reads_inputs_in_hwc_order():
    """Output (f, 0, 0) of the first convolution takes input pixel (h, w) of channel c, at flat HWC
    index (h * W + w) * C + c, with weight conv.weight[f, c, h, w]; no other input."""
    spec = ConvSpec(5, 4, 3, 1, filters=2, kernel=3, pool=2, hidden=4, outputs=2)
    net = conv_net(spec, seed=0)
    conv = net.features[0]
    weight = network_layers(net)[0].weight
    out_h, out_w = 5 - 2, 4 - 2
    for f in range(2):
        row = weight[f * out_h * out_w]  # CHW position (f, 0, 0)
        expected = np.zeros(spec.input_dim)
        for h, w, c in itertools.product(range(3), range(3), range(3)):
            expected[(h * 4 + w) * 3 + c] = conv.weight[f, c, h, w].item()
        assert np.array_equal(row, expected)
    assert weight.shape == (2 * out_h * out_w, spec.input_dim)


@pytest.mark.parametrize(("height", "width", "pool"), [(6, 6, 2), (7, 5, 2), (8, 9, 3), (5, 5, 1)])
def test_pool_groups_are_the_windows(height, width, pool):
    spec = ConvSpec(height, width, 1, 1, filters=3, kernel=2, pool=pool, hidden=4, outputs=2)
    layers = network_layers(conv_net(spec, seed=1))
    groups = layers[1].groups
    conv_h, conv_w = height - 1, width - 1
    out_c, out_h, out_w = spec.feature_shape()
    assert groups.shape == (out_c * out_h * out_w, pool * pool)
    assert all(len(set(g.tolist())) == pool * pool for g in groups)  # distinct indices in every window
    flat = groups.ravel()
    assert len(set(flat.tolist())) == flat.size  # windows are disjoint ...
    assert flat.min() >= 0 and flat.max() < layers[0].weight.shape[0]  # ... and index the conv outputs
    if conv_h % pool or conv_w % pool:
        assert flat.size < layers[0].weight.shape[0]  # a strict subset when the pool does not divide
    # output (c, i, j) in CHW order takes the maximum of window rows i*p.., columns j*p.. of channel c
    for c, i, j in itertools.product(range(out_c), range(out_h), range(out_w)):
        window = {c * conv_h * conv_w + (i * pool + a) * conv_w + (j * pool + b)
                  for a, b in itertools.product(range(pool), range(pool))}
        assert set(groups[(c * out_h + i) * out_w + j].tolist()) == window


def test_overlapping_pool_windows_compute_the_torch_model():
    """A MaxPool2d with stride 1 (not what ConvNet builds, but not refused) has overlapping windows."""
    spec = ConvSpec(6, 6, 2, 1, filters=2, kernel=2, pool=2, hidden=4, outputs=2)
    net = conv_net(spec, seed=2)
    net.features[-1] = nn.MaxPool2d(2, stride=1)
    torch.manual_seed(3)
    net.classifier[1] = nn.Linear(2 * 4 * 4, 4)
    layers = network_layers(net)
    assert layers[1].groups.shape == (2 * 4 * 4, 4)
    assert len(set(layers[1].groups.ravel().tolist())) < layers[1].groups.size
    x = np.random.default_rng(0).normal(size=(30, spec.input_dim))
    assert np.abs(forward(layers, x) - torch_logits(net, x)).max() < 1e-12


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2, padding=1), nn.MaxPool2d(2, dilation=2),
                                  nn.MaxPool2d(2, ceil_mode=True)])
def test_unsupported_max_pooling_is_refused(pool):
    net = conv_net(ConvSpec(7, 7, 1, 1, filters=2, kernel=2, pool=2, hidden=4, outputs=2), seed=0)
    net.features[-1] = pool
    with pytest.raises(ValueError, match="cannot encode MaxPool2d"):
        network_layers(net)


def test_plain_sequential_with_conv_and_pooling_is_refused():
    # only ConvNet carries the image shape needed to unroll a convolution
    network = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="cannot encode layer Conv2d"):
        network_layers(network)


# ---------------------------------------------------------------------------------------------
# 2. Bounds with pooling
# ---------------------------------------------------------------------------------------------

def relu_network_max(groups, size, u):
    """The maximum per group computed by the ReLU network of _pool_as_relus, in numpy."""
    linears, final = _pool_as_relus(np.asarray(groups), size)
    a = np.asarray(u, dtype=np.float64)
    for matrix in linears:
        assert matrix.shape[1] == a.shape[-1]
        a = np.maximum(a @ matrix.T, 0.0)
    return a @ final.T


@pytest.mark.parametrize("groups", [
    [[0, 1, 2, 3], [4, 5, 6, 7]],  # 2x2 windows
    [list(range(9)), list(range(9, 18))],  # 3x3: odd sizes at every level of the tree
    [[0], [3], [5]],  # 1x1: a selection, no ReLU
    [[4, 0, 2], [1, 1, 6], [7, 3, 5]],  # odd windows, overlapping and repeated indices, any order
    [[7, 3, 6, 5, 2], [0, 1, 2, 3, 4]],  # 5 -> 3 -> 2 -> 1
])
def test_pool_as_relus_is_the_maximum(groups):
    size = 1 + max(max(g) for g in groups)
    rng = np.random.default_rng(0)
    expected = lambda u: np.array([[row[g].max() for g in groups] for row in u])  # noqa: E731
    integers = rng.integers(-50, 50, size=(500, size)).astype(np.float64)  # exact in float64
    assert np.array_equal(relu_network_max(groups, size, integers), expected(integers))
    reals = rng.normal(size=(500, size)) * rng.choice([1e-3, 1.0, 1e3], size=(500, 1))
    got, want = relu_network_max(groups, size, reals), expected(reals)
    assert np.all(np.abs(got - want) <= 1e-12 * (1 + np.abs(reals).max(axis=1, keepdims=True)))
    ties = np.zeros((1, size))
    assert np.array_equal(relu_network_max(groups, size, ties), expected(ties))


def l1_ball_samples(rng, x, eps, n):
    """Points of the L1 ball around x: its vertices +-eps e_k, points of its sphere and inside it."""
    d = len(x)
    return np.concatenate([x + eps * np.concatenate([np.eye(d), -np.eye(d)]),
                           x + sample_l1(rng, n, d, eps, "sphere"),
                           x + sample_l1(rng, n, d, eps, "ball")])


BOUND_SPECS = {
    "grey-1conv": ConvSpec(6, 6, 1, 1, filters=2, kernel=3, pool=2, hidden=4, outputs=2),
    "grey-2conv": ConvSpec(7, 6, 1, 2, filters=2, kernel=2, pool=2, hidden=4, outputs=2),
    "rgb-pool3": ConvSpec(6, 6, 3, 1, filters=2, kernel=2, pool=3, hidden=4, outputs=3),
    "grey-3conv": ConvSpec(8, 8, 1, 3, filters=2, kernel=2, pool=2, hidden=4, outputs=2),
}


@pytest.mark.parametrize("name", BOUND_SPECS)
def test_conv_bounds_contain_every_sampled_output(name):
    spec = BOUND_SPECS[name]
    layers = network_layers(conv_net(spec, seed=len(name)))
    engine = L1BoundEngine(layers)
    rng = np.random.default_rng(5)
    for eps in (0.05, 0.5, 2.0):
        x = rng.uniform(0, 1, spec.input_dim)
        tight, box = engine.bounds(x, eps), interval_bounds(layers, x - eps, x + eps)
        assert len(tight) == len(box) == len(layers)
        for (lo, hi), (box_lo, box_hi) in zip(tight, box, strict=True):
            assert np.all(lo <= hi) and np.all(box_lo <= box_hi)
            assert np.all(lo >= box_lo - 1e-12) and np.all(hi <= box_hi + 1e-12)  # never looser
        samples = l1_ball_samples(rng, x, eps, 3000)
        for output, (lo, hi), (box_lo, box_hi) in zip(layer_outputs(layers, samples), tight, box, strict=True):
            assert np.all(output >= box_lo - TOL) and np.all(output <= box_hi + TOL)
            assert np.all(output >= lo - TOL) and np.all(output <= hi + TOL)
        # the first layer is affine: its exact range over the L1 ball is W x + b +- eps max_k |W_uk|
        # (CROWN's dual norm), and the vertices reach it; interval arithmetic gives eps sum_k |W_uk|
        first = layers[0]
        centre, reach = first.weight @ x + first.bias, eps * np.abs(first.weight).max(axis=1)
        assert np.allclose(tight[0][0], centre - reach, rtol=0, atol=TOL)
        assert np.allclose(tight[0][1], centre + reach, rtol=0, atol=TOL)
        pooled = [i for i, layer in enumerate(layers) if isinstance(layer, MaxPoolLayer)]
        assert len(pooled) == 1
    # CROWN helps: at the largest eps some bound after the pooling is strictly tighter
    after = pooled[0] + 1
    assert np.any(tight[after][1] < box[after][1] - 1e-6) or np.any(tight[after][0] > box[after][0] + 1e-6)


def test_conv_bounds_are_sound_for_float64_weights():
    spec = ConvSpec(5, 5, 1, 1, filters=2, kernel=2, pool=2, hidden=3, outputs=2)
    net = conv_net(spec, seed=0).double()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 1.0)
    layers = network_layers(net)
    x = np.random.default_rng(0).uniform(0, 1, spec.input_dim)
    for eps in (0.1, 1.0):
        tight = L1BoundEngine(layers).bounds(x, eps)
        samples = l1_ball_samples(np.random.default_rng(1), x, eps, 1000)
        for output, (lo, hi) in zip(layer_outputs(layers, samples), tight, strict=True):
            assert np.all(output >= lo - 1e-12) and np.all(output <= hi + 1e-12)


# ---------------------------------------------------------------------------------------------
# 3. The MILP with pooling is exact
# ---------------------------------------------------------------------------------------------

def torch_layers_forward(layers, a):
    """network_layers' function in torch (for gradients); equal to the model by section 1."""
    for layer in layers:
        if isinstance(layer, MaxPoolLayer):
            a = a[:, torch.as_tensor(layer.groups)].max(dim=-1).values
        else:
            a = a @ torch.as_tensor(layer.weight).T + torch.as_tensor(layer.bias)
            if layer.relu:
                a = a.clamp(min=0.0)
    return a


class ConvEnsemble:
    """Two seeded ConvNets (N(0, 1) float32 weights) and one point both classify as ``label``.

    4x4 grey inputs, 2 filters of 2x2 (3x3x2 = 18 ReLUs), 2x2 pooling of the top-left 2x2 of each
    channel (a row and a column of the convolution output are in no window), 3 hidden ReLUs.
    Measured by bisection with the MILP (|A| = 1, alpha = 1): the pair is fooled together from
    eps ~ 0.867, classifier 0 alone from ~ 0.766 and classifier 1 alone from ~ 0.112."""

    spec = ConvSpec(4, 4, 1, 1, filters=2, kernel=2, pool=2, hidden=3, outputs=2)

    def __init__(self, seed=10):
        self.nets = [conv_net(self.spec, seed, normal=True), conv_net(self.spec, seed + 1, normal=True)]
        self.layers = [network_layers(net) for net in self.nets]
        self.x = np.random.default_rng(seed).uniform(0, 1, (1, self.spec.input_dim))
        predictions = [int(torch_logits(net, self.x)[0].argmax()) for net in self.nets]
        assert predictions[0] == predictions[1]
        self.label = predictions[0]
        self._search = {}

    def problem(self, eps):
        return AttackProblem(self.layers, self.x, np.array([self.label]), 1, eps, 1.0)

    def fooled(self, deltas):
        """(m, |C|): does classifier c misclassify x + delta (Def. 4, ties count), by the torch model."""
        out = []
        for net in self.nets:
            y = torch_logits(net, self.x + deltas)
            other = np.delete(y, self.label, axis=1).max(axis=1)
            out.append(other >= y[:, self.label])
        return np.stack(out, axis=1)

    def search(self, eps):
        """Candidate perturbations: 0, the L1 vertices, random points of the ball and its sphere, and
        projected gradient ascent (L2-normalised steps, L1 projection) from random starts on
        sum_c min(margin_c, 0.05) over each classifier alone and over both."""
        if eps not in self._search:
            rng = np.random.default_rng(0)
            d = self.spec.input_dim
            found = [np.zeros((1, d)), eps * np.concatenate([np.eye(d), -np.eye(d)]),
                     sample_l1(rng, 4000, d, eps, "ball"), sample_l1(rng, 4000, d, eps, "sphere")]
            restarts, steps = 32, 60
            x = torch.as_tensor(np.repeat(self.x, restarts, axis=0))
            for subset in ((0,), (1,), (0, 1)):
                delta = torch.as_tensor(sample_l1(rng, restarts, d, eps, "ball"))
                for step in range(steps):
                    delta.requires_grad_(True)
                    margins = []
                    for c in subset:
                        y = torch_layers_forward(self.layers[c], x + delta)
                        margins.append(y[:, 1 - self.label] - y[:, self.label])
                    objective = torch.stack(margins, dim=1).clamp(max=0.05).sum()
                    (grad,) = torch.autograd.grad(objective, delta)
                    with torch.no_grad():
                        size = eps * (0.5 * (1 - step / steps) + 1e-2)
                        delta = project_l1(delta + size * grad / grad.norm(dim=1, keepdim=True).clamp(min=1e-12), eps)
                        found.append(delta.numpy().copy())
            candidates = np.concatenate(found)
            assert np.abs(candidates).sum(axis=1).max() <= eps * (1 + 1e-12)
            self._search[eps] = candidates
        return self._search[eps]


@pytest.fixture(scope="module")
def conv_ensemble():
    return ConvEnsemble()


# 0.1: neither classifier can be fooled; 0.5: classifier 1 alone can be; 0.8: each alone can be, not both
# at once; 0.95 and 1.3: both at once.
CONV_EPS = [0.1, 0.5, 0.8, 0.95, 1.3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_milp_with_pooling_is_exact(conv_ensemble, backend):
    ens = conv_ensemble
    verdicts = []
    for eps in CONV_EPS:
        for bounds in ("interval", "lirpa"):
            result = find_attack(ens.problem(eps), backend, TIME_LIMIT, bounds=bounds)
            assert result.backend == backend  # the model fits Gurobi's size-limited licence
            assert result.verdict in ("attack", "robust"), (eps, bounds, result.verdict, result.note)
            assert result.relus["unstable"] + result.relus["stable"] == 2 * (18 + 3)
            if result.verdict == "attack":
                value = check_attack(ens.layers, ens.x, np.array([ens.label]), result.deltas, result.probabilities,
                                     eps, 1.0)
                assert value == 1.0
                assert ens.fooled(result.deltas[0]).all()  # by the torch models themselves
            else:
                assert result.complete  # alpha = 1: one attack suffices (Lemma 2)
                fooled = ens.fooled(ens.search(eps))
                assert not fooled.all(axis=1).any(), f"eps {eps}: the search fools both against 'robust'"
            verdicts.append((eps, bounds, result.verdict))
    by_eps = {eps: {v for e, _, v in verdicts if e == eps} for eps in CONV_EPS}
    assert all(len(v) == 1 for v in by_eps.values()), by_eps  # interval and lirpa bounds agree
    assert [by_eps[eps].pop() for eps in CONV_EPS] == ["robust"] * 3 + ["attack"] * 2


def test_the_attack_search_is_strong_enough_to_matter(conv_ensemble):
    """The robust cross-check above means something only if the search finds attacks where they exist,
    and each classifier alone is fooled where the MILP says so (eps 0.5: classifier 1; 0.8: both)."""
    ens = conv_ensemble
    for eps, alone in [(0.5, [False, True]), (0.8, [True, True])]:
        fooled = ens.fooled(ens.search(eps))
        assert fooled.any(axis=0).tolist() == alone
        assert not fooled.all(axis=1).any()
        for c in range(2):
            single = find_attack(AttackProblem([ens.layers[c]], ens.x, np.array([ens.label]), 1, eps, 1.0), "highs",
                                 TIME_LIMIT)
            assert single.verdict == ("attack" if alone[c] else "robust")
    for eps in (0.95, 1.3):
        assert ens.fooled(ens.search(eps)).all(axis=1).any()


def test_smt_and_milp_agree_on_a_pooling_instance():
    from nnassure.ensemble.smt import solve_smt

    # one classifier: 2 filters of 2x2 on a 3x3 image, one 2x2 window per filter, 2 hidden units;
    # fooled from eps ~ 2.79 (MILP bisection)
    spec = ConvSpec(3, 3, 1, 1, filters=2, kernel=2, pool=2, hidden=2, outputs=2)
    net = conv_net(spec, seed=6, normal=True)
    layers = [network_layers(net)]
    x = np.random.default_rng(6).uniform(0, 1, (1, 9))
    label = np.array([int(torch_logits(net, x)[0].argmax())])
    verdicts = []
    for eps in (2.0, 3.5):
        problem = AttackProblem(layers, x, label, 1, eps, 1.0)
        smt = solve_smt(problem, SMT_TIME_LIMIT)
        milp = find_attack(problem, "highs", TIME_LIMIT)
        encoding = encode(problem)
        assert encoding.pool_binaries > 0  # the pooling is really encoded, not fixed by bounds
        assert smt.verdict == milp.verdict
        if smt.verdict == "attack":
            assert check_attack(layers, x, label, smt.deltas, smt.probabilities, eps, 1.0) == 1.0
            assert check_attack(layers, x, label, milp.deltas, milp.probabilities, eps, 1.0) == 1.0
        verdicts.append(smt.verdict)
    assert verdicts == ["robust", "attack"]


# ---------------------------------------------------------------------------------------------
# 4. Encoding sizes: stable ReLUs and fixed pools need no binaries
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bounds", ["interval", "lirpa"])
def test_tiny_eps_needs_no_binaries_in_the_network(bounds):
    spec = ConvSpec(5, 5, 1, 1, filters=2, kernel=2, pool=2, hidden=3, outputs=2)
    # conv biases of 3: every convolution unit is active, so every window has a strict maximum
    nets = [conv_net(spec, seed, conv_bias=3.0) for seed in (0, 1)]
    layers = [network_layers(net) for net in nets]
    x = np.random.default_rng(0).uniform(0, 1, (2, 25))
    labels = forward(layers[0], x).argmax(axis=1)
    relus = 2 * 2 * (32 + 3)  # classifiers x points x (conv units + hidden units), |A| = 1
    small = encode(AttackProblem(layers, x, labels, 1, 1e-9, 0.5), bounds=bounds)
    assert small.unstable_relus == 0 and small.pool_binaries == 0
    assert small.stable_relus == relus
    # binaries left: one loss and one wrong-class indicator per (classifier, attack, point)
    assert small.model.n_integer == 2 * 2 * 2
    large = encode(AttackProblem(layers, x, labels, 1, 1.0, 0.5), bounds=bounds)
    assert large.unstable_relus + large.stable_relus == relus
    windows = 2 * 2 * 8  # classifiers x points x pooled outputs (2 filters x 2 x 2), 4 inputs each
    assert 0 < large.pool_binaries <= 4 * windows
    assert large.model.n_integer == large.unstable_relus + large.pool_binaries + 2 * 2 * 2


def test_a_window_of_dead_relus_needs_no_binaries():
    spec = ConvSpec(5, 5, 1, 1, filters=2, kernel=2, pool=2, hidden=3, outputs=2)
    net = conv_net(spec, seed=0, conv_bias=3.0)
    with torch.no_grad():
        net.features[0].bias[0] = -100.0  # filter 0 is dead on [0, 1]^25 and near it
    layers = [network_layers(net)]
    x = np.random.default_rng(0).uniform(0, 1, (1, 25))
    encoding = encode(AttackProblem(layers, x, forward(layers[0], x).argmax(axis=1), 1, 1e-9, 1.0))
    assert encoding.unstable_relus == 0
    assert encoding.pool_binaries == 0


def test_eps_zero_with_lirpa_bounds_on_a_conv_net():
    spec = ConvSpec(5, 5, 1, 1, filters=2, kernel=2, pool=2, hidden=3, outputs=2)
    layers = [network_layers(conv_net(spec, seed=0))]
    x = np.random.default_rng(0).uniform(0, 1, (1, 25))
    label = forward(layers[0], x).argmax(axis=1)
    interval = find_attack(AttackProblem(layers, x, label, 1, 0.0, 1.0), "highs", TIME_LIMIT, bounds="interval")
    assert interval.verdict == "robust"  # delta = 0 and x is classified correctly
    lirpa = find_attack(AttackProblem(layers, x, label, 1, 0.0, 1.0), "highs", TIME_LIMIT, bounds="lirpa")
    assert lirpa.verdict == "robust"


# ---------------------------------------------------------------------------------------------
# 5. Model files
# ---------------------------------------------------------------------------------------------

def test_conv_model_file_round_trip(tmp_path):
    spec = ConvSpec(6, 5, 3, 2, filters=3, kernel=2, pool=2, hidden=4, outputs=2)
    net = conv_net(spec, seed=4)
    save_model(net, tmp_path / "conv", {"instance": "traffic_signs-6x5", "seed": 4})
    document = json.loads((tmp_path / "conv.json").read_text())
    assert document["format"] == "nnassure.convnet/1"
    loaded = load_model(tmp_path / "conv")
    assert isinstance(loaded.model, ConvNet) and loaded.model.spec == spec
    assert not loaded.model.training
    assert loaded.metadata == {"instance": "traffic_signs-6x5", "seed": 4}
    x = torch.as_tensor(np.random.default_rng(0).uniform(0, 1, (20, spec.input_dim)), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), net(x))
    for saved, reloaded in zip(network_layers(net), network_layers(loaded.model), strict=True):
        if isinstance(saved, MaxPoolLayer):
            assert np.array_equal(saved.groups, reloaded.groups)
        else:
            assert np.array_equal(saved.weight, reloaded.weight) and np.array_equal(saved.bias, reloaded.bias)


@pytest.mark.parametrize(("edit", "message"), [
    ({"kernel": 9}, "too small"),  # kernel larger than the 6x5 image
    ({"conv_layers": 4}, "too small"),  # four 2x2 convolutions leave 2x1, no room for 2x2 pooling
    ({"pool": 6}, "too small"),
    ({"conv_layers": 0}, "positive integer"),
    ({"channels": True}, "positive integer"),
    ({"height": 6.5}, "positive integer"),
    ({"outputs": 1}, "at least 2 outputs"),
    ({"stride": 2}, "stride"),
])
def test_corrupt_conv_spec_is_refused(tmp_path, edit, message):
    spec = ConvSpec(6, 5, 3, 2, filters=3, kernel=2, pool=2, hidden=4, outputs=2)
    save_model(conv_net(spec, seed=0), tmp_path / "conv")
    path = tmp_path / "conv.json"
    document = json.loads(path.read_text())
    document["spec"].update(edit)
    path.write_text(json.dumps(document))
    with pytest.raises(InputFileError, match=message) as info:
        load_model(tmp_path / "conv")
    assert "\n" not in str(info.value)


def test_conv_spec_under_the_mlp_format_is_refused(tmp_path):
    save_model(conv_net(ConvSpec(5, 5, 1, 1, kernel=2), seed=0), tmp_path / "conv")
    path = tmp_path / "conv.json"
    document = json.loads(path.read_text())
    document["format"] = "nnassure.mlp/1"
    path.write_text(json.dumps(document))
    with pytest.raises(InputFileError, match="not a valid model spec"):
        load_model(tmp_path / "conv")


def test_conv_weights_of_another_architecture_are_refused(tmp_path):
    save_model(conv_net(ConvSpec(5, 5, 1, 1, filters=2, kernel=2), seed=0), tmp_path / "conv")
    path = tmp_path / "conv.json"
    document = json.loads(path.read_text())
    document["spec"]["filters"] = 3
    path.write_text(json.dumps(document))
    with pytest.raises(InputFileError, match="weights do not match the architecture"):
        load_model(tmp_path / "conv")


# ---------------------------------------------------------------------------------------------
# 6. Configuration
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("override", "key"), [
    ("ensemble.rows=[99]", "ensemble.rows"),
    ("ensemble.rows=[1,0]", "ensemble.rows[1]"),
    ("ensemble.row=39", "ensemble.row"),
    ("ensemble.backends=[cplex]", "ensemble.backends"),
    ("ensemble.backends=[]", "ensemble.backends"),
    ("ensemble.table_backend=z3", "ensemble.table_backend"),
    ("ensemble.bounds=foo", "ensemble.bounds"),
    ("ensemble.time_limit=0", "ensemble.time_limit"),
    ("ensemble.smt_time_limit=-1", "ensemble.smt_time_limit"),
    ("ensemble.margin=-1e-4", "ensemble.margin"),
    ("ensemble.instance=nope", "ensemble.instance"),
    ("ensemble.classifier=0", "ensemble.classifier"),
    ("ensemble.pool=0", "ensemble.pool"),
    ("ensemble.min_accuracy_signs=1.5", "ensemble.min_accuracy_signs"),
])
def test_bad_ensemble_values_raise_config_error_naming_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        compose(["experiment=smoke", override])
    message = str(info.value)
    assert key in message
    assert "\n" not in message


def test_ensemble_config_composes_with_the_38_rows():
    cfg = compose(["experiment=smoke"])
    assert len(cfg.ensemble.benchmarks) == 38
    assert [row.id for row in cfg.ensemble.benchmarks] == list(range(1, 39))
    assert list(cfg.ensemble.backends) == ["highs", "gurobi"] and cfg.ensemble.bounds == "lirpa"
    chosen = compose(["experiment=smoke", "ensemble.rows=[2,25]", "ensemble.instance=mnist_0_1-7x7",
                      "ensemble.backends=[highs]"])
    assert list(chosen.ensemble.rows) == [2, 25] and chosen.ensemble.instance == "mnist_0_1-7x7"


# ---------------------------------------------------------------------------------------------
# 7. run_row
# ---------------------------------------------------------------------------------------------

def test_run_row_on_the_paper_example():
    from nnassure.ensemble.experiment import SolveSettings, run_row

    classifiers, points, labels = paper_example("relu")
    problem = AttackProblem(classifiers, points, labels, 2, 2.0, 0.5)
    settings = SolveSettings(backends=("highs",), table_backend="highs", smt=True, time_limit=20, smt_time_limit=30)
    methods, arrays = run_row(problem, settings)
    assert set(methods) == {"milp_highs", "maxmilp", "smt", "baselines"}
    for name in ("milp_highs", "maxmilp", "smt"):
        assert methods[name]["verdict"] == "attack", methods[name]
        assert methods[name]["value"] == 0.5  # the known optimum (Fig. 4)
        deltas, probabilities = arrays[f"{name}_deltas"], arrays[f"{name}_probabilities"]
        assert deltas.shape == (2, 1, 2) and probabilities.shape == (2,)
        assert attack_value(classifiers, points, labels, deltas, probabilities) >= 0.5
        assert np.abs(deltas).sum(axis=-1).max() <= 2.0 * (1 + 1e-12)
    assert methods["milp_highs"]["requested_backend"] == "highs" and methods["smt"]["backend"] == "z3"
    assert methods["maxmilp"]["optimal"]
    baselines = methods["baselines"]
    assert baselines["verdict"] == "done"
    assert (baselines["uniform"], baselines["best_deterministic"]) == (0.5, 0.0)
    assert arrays["baselines_deltas"].shape == (2, 1, 2)
    json.dumps(methods)  # the row document must be serialisable as it is

    robust = AttackProblem(classifiers, points, labels, 2, 2.0, 0.51)
    methods, arrays = run_row(robust, settings)
    assert {name: methods[name]["verdict"] for name in ("milp_highs", "maxmilp", "smt")} == \
        dict.fromkeys(("milp_highs", "maxmilp", "smt"), "robust")
    # |A| = |C| = 2 attacks suffice (attacks_suffice), so the proofs cover every randomized attack
    assert methods["milp_highs"]["complete"] and methods["smt"]["complete"]
    assert set(arrays) == {"baselines_deltas"}


def test_run_row_on_a_pooling_ensemble(conv_ensemble):
    from nnassure.ensemble.experiment import SolveSettings, run_row

    ens = conv_ensemble
    points = np.concatenate([ens.x, ens.x + 0.05])
    problem = AttackProblem(ens.layers, points, np.array([ens.label] * 2), 2, 0.95, 0.5)
    settings = SolveSettings(backends=("highs", "gurobi"), table_backend="highs", smt=False, time_limit=20)
    methods, arrays = run_row(problem, settings)
    assert set(methods) == {"milp_highs", "milp_gurobi", "maxmilp", "baselines"}
    for name in ("milp_highs", "milp_gurobi", "maxmilp"):
        assert methods[name]["verdict"] == "attack", methods[name]
        deltas = arrays[f"{name}_deltas"]
        assert deltas.shape == (2, 2, 16)
        value = attack_value(ens.layers, problem.points, problem.labels, deltas, arrays[f"{name}_probabilities"])
        assert value == methods[name]["value"] >= 0.5
    assert arrays["baselines_deltas"].shape == (2, 2, 16)
    baselines = methods["baselines"]
    assert baselines["verdict"] == "done"
    assert 0 <= baselines["best_deterministic"] <= 1 and 0 <= baselines["uniform"] <= 1
