"""Assessing outside models: ONNX import, data checks, VNN-LIB reading and deciding (issue 14).

Every model and property is made here: small torch networks exported to ONNX (an MLP, a tanh MLP,
a CNN), properties that hold (checked on a dense grid of a 2-input net, or by construction),
properties violated at a known point, and properties that only the MILP decides. Every
``violated`` counterexample is re-run in onnxruntime; every ``holds`` is attacked by PGD and by
random sampling in its box.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nnassure.assess.data import load_assessment_data
from nnassure.assess.decide import DecideSettings, decide
from nnassure.assess.milp import graph_layers
from nnassure.assess.model import check_against_onnxruntime, load_onnx, onnxruntime_logits
from nnassure.assess.vnnlib import read_vnnlib
from nnassure.errors import InputFileError


def export(network: nn.Module, shape: tuple[int, ...], path) -> str:
    network.eval()
    torch.onnx.export(network, torch.zeros(1, *shape), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    return str(path)


def mlp(inputs: int, hidden: int, outputs: int, seed: int, activation: type = nn.ReLU) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(inputs, hidden), activation(), nn.Linear(hidden, hidden), activation(),
                         nn.Linear(hidden, outputs))


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(1)
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))
    return {
        "mlp": export(mlp(2, 8, 3, 0), (2,), root / "mlp.onnx"),
        "tanh": export(mlp(2, 8, 3, 0, nn.Tanh), (2,), root / "tanh.onnx"),
        "cnn": export(cnn, (1, 8, 8), root / "cnn.onnx"),
        "softmax": export(nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1)), (2,), root / "softmax.onnx"),
    }


def vnnlib_text(lower, upper, polytopes, outputs: int) -> str:
    """A VNN-COMP style file: the box, then an or of ands of rows ``a . y <= b``."""
    lines = [f"(declare-const X_{i} Real)" for i in range(len(lower))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(outputs)]
    for i, (lo, hi) in enumerate(zip(lower, upper, strict=True)):
        lines += [f"(assert (>= X_{i} {float(lo)!r}))", f"(assert (<= X_{i} {float(hi)!r}))"]

    def row(a, b) -> str:
        terms = " ".join(f"(* {float(c)!r} Y_{j})" for j, c in enumerate(a) if c != 0)
        return f"(<= (+ {terms}) {float(b)!r})"

    ands = " ".join("(and " + " ".join(row(a, b) for a, b in rows) + ")" for rows in polytopes)
    lines.append(f"(assert (or {ands}))")
    return "\n".join(lines) + "\n"


def write_property(tmp_path, name, lower, upper, polytopes, outputs):
    path = tmp_path / f"{name}.vnnlib"
    path.write_text(vnnlib_text(lower, upper, polytopes, outputs))
    return read_vnnlib(path, len(lower), outputs)


def not_top(top: int, outputs: int) -> list:
    """The negation of "class ``top`` wins": some other y_o >= y_top (one polytope per o)."""
    polytopes = []
    for other in range(outputs):
        if other != top:
            a = np.zeros(outputs)
            a[top], a[other] = 1.0, -1.0
            polytopes.append([(a, 0.0)])
    return polytopes


def attack_finds_nothing(model, prop, points: int = 4000, seed: int = 0) -> None:
    """Random points and PGD in every box: none may land in a polytope (onnxruntime's outputs)."""
    rng = np.random.default_rng(seed)
    for region in prop.regions:
        x = rng.uniform(region.lower, region.upper, size=(points, len(region.lower))).astype(np.float32)
        if len(region.lower) <= 10:  # every corner of a small box; random corners of a large one
            corners = np.array(np.meshgrid(*zip(region.lower, region.upper, strict=True)))
            corners = corners.reshape(len(region.lower), -1).T
        else:
            corners = np.where(rng.random((points, len(region.lower))) < 0.5, region.lower, region.upper)
        x = np.concatenate([x, corners.astype(np.float32)])
        y = onnxruntime_logits(model, x.reshape(len(x), *model.input_shape))
        for polytope in region.polytopes:
            assert not polytope.contains(y).any()
            xt = torch.as_tensor(x[:64]).clone()
            lo, hi = torch.as_tensor(region.lower, dtype=torch.float32), torch.as_tensor(region.upper,
                                                                                         dtype=torch.float32)
            for _ in range(100):
                xt.requires_grad_(True)
                out = model.network(xt.reshape(len(xt), *model.input_shape)).reshape(len(xt), -1)
                loss = (out @ torch.as_tensor(polytope.A.T, dtype=torch.float32)
                        - torch.as_tensor(polytope.b, dtype=torch.float32)).amax(dim=1).sum()
                (grad,) = torch.autograd.grad(loss, xt)
                with torch.no_grad():
                    xt = torch.clamp(xt - 0.02 * (hi - lo) * grad.sign(), lo, hi)
            y = onnxruntime_logits(model, xt.detach().numpy().reshape(len(xt), *model.input_shape))
            assert not polytope.contains(y).any()


def assert_checked(model, prop, decision) -> None:
    """A violated verdict's counterexample lies in a box and, in onnxruntime, in that box's polytope."""
    assert decision.result == "violated" and decision.counterexample is not None
    x = decision.counterexample.astype(np.float32)
    y = onnxruntime_logits(model, x.reshape(1, *model.input_shape))[0]
    assert any((x >= r.lower).all() and (x <= r.upper).all() and any(p.contains(y)[0] for p in r.polytopes)
               for r in prop.regions)
    np.testing.assert_allclose(decision.output, y)


# --- import --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "tanh", "cnn"])
def test_the_converted_model_agrees_with_onnxruntime(onnx_files, name):
    model = load_onnx(onnx_files[name])
    x = np.random.default_rng(0).uniform(0, 1, size=(64, *model.input_shape)).astype(np.float32)
    agreement = check_against_onnxruntime(model, x, 1e-5)
    assert agreement.max_abs <= 1e-5 * (1 + agreement.scale) and agreement.prediction_mismatches == 0
    assert model.relu_only == (name != "tanh")


def test_a_model_whose_batch_is_fixed_at_one_is_imported_and_decided(tmp_path):
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(mlp(2, 8, 3, 0).eval(), torch.zeros(1, 2), str(path), input_names=["x"], output_names=["y"],
                      dynamo=False)  # no dynamic axes: the VNN-COMP habit of a batch of 1
    model = load_onnx(path)
    assert model.fixed_batch
    x = np.random.default_rng(0).uniform(-5, 5, size=(300, 2)).astype(np.float32)
    assert check_against_onnxruntime(model, x, 1e-5).prediction_mismatches == 0
    classes = onnxruntime_logits(model, x).argmax(axis=1)
    top = int(np.bincount(classes).argmax())
    known = x[classes != top][0]
    prop = write_property(tmp_path, "fixed", known - 0.01, known + 0.01, not_top(top, 3), 3)
    assert_checked(model, prop, decide(model, prop, DecideSettings(), layers=graph_layers(model.network,
                                                                                          model.input_shape)))


def test_an_operator_the_bound_engine_cannot_bound_is_refused_by_name(onnx_files):
    with pytest.raises(InputFileError, match="ONNX operator Softmax is not supported by the bound engine"):
        load_onnx(onnx_files["softmax"])


def test_an_operator_onnx2torch_cannot_convert_is_refused_by_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Det", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(InputFileError, match=r"ONNX operator Det \(opset 17\) is not supported by onnx2torch"):
        load_onnx(path)


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(InputFileError, match="not a valid ONNX model"):
        load_onnx(path)


# --- data ----------------------------------------------------------------------------------------


def test_data_of_the_wrong_shape_non_finite_or_with_bad_labels_is_refused(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((5, 2), np.float32), y=np.array([0, 1, 2, 0, 1]))
    assert len(load_assessment_data(good, (2,), 3)) == 5
    cases = {
        "shape": ({"x": np.zeros((5, 3)), "y": np.zeros(5, int)}, "per sample; the model expects"),
        "nan": ({"x": np.full((5, 2), np.nan), "y": np.zeros(5, int)}, "non-finite value"),
        "labels": ({"x": np.zeros((5, 2)), "y": np.array([0, 1, 2, 3, 0])}, r"labels must lie in \[0, 2\]"),
        "count": ({"x": np.zeros((5, 2)), "y": np.zeros(4, int)}, "5 inputs but labels of shape"),
        "missing": ({"inputs": np.zeros((5, 2))}, "no label array"),
    }
    for name, (arrays, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        with pytest.raises(InputFileError, match=message):
            load_assessment_data(path, (2,), 3)


def test_parquet_data_with_feature_columns_or_a_list_column(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"x0": [0.1, 0.2], "x1": [0.3, 0.4], "label": [1, 0]})
    frame.to_parquet(tmp_path / "cols.parquet")
    data = load_assessment_data(tmp_path / "cols.parquet", (2,), 2)
    np.testing.assert_allclose(data.x, [[0.1, 0.3], [0.2, 0.4]], rtol=1e-6)
    pd.DataFrame({"input": [[0.0] * 4, [1.0] * 4], "label": [0, 1]}).to_parquet(tmp_path / "list.parquet")
    assert load_assessment_data(tmp_path / "list.parquet", (1, 2, 2), 2).x.shape == (2, 1, 2, 2)


# --- VNN-LIB -------------------------------------------------------------------------------------


def test_vnnlib_syntax_errors_and_mismatches_are_one_line_with_the_place(tmp_path):
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 0.5)\n")
    with pytest.raises(InputFileError, match=r"bad.vnnlib:3:1: VNN-LIB syntax error: '\(' is never closed"):
        read_vnnlib(bad, 1, 1)
    text = vnnlib_text([0.0], [1.0], [[(np.array([1.0]), 0.0)]], 1)
    (tmp_path / "ok.vnnlib").write_text(text)
    with pytest.raises(InputFileError, match="declares 1 inputs X_i and 1 outputs Y_j; the model has 2 inputs"):
        read_vnnlib(tmp_path / "ok.vnnlib", 2, 1)
    (tmp_path / "open.vnnlib").write_text(text.replace("(assert (<= X_0 1.0))\n", ""))
    with pytest.raises(InputFileError, match="input X_0 is not bounded on both sides"):
        read_vnnlib(tmp_path / "open.vnnlib", 1, 1)
    (tmp_path / "strict.vnnlib").write_text(text.replace("(assert (<= X_0 1.0))", "(assert (< X_0 1.0))"))
    with pytest.raises(InputFileError, match=r"strict.vnnlib:4:9: VNN-LIB error: '<' is not supported"):
        read_vnnlib(tmp_path / "strict.vnnlib", 1, 1)
    (tmp_path / "undeclared.vnnlib").write_text(text.replace("(<= X_0 1.0)", "(<= X_1 1.0)"))
    with pytest.raises(InputFileError, match=r"undeclared.vnnlib:4:13: VNN-LIB error: undeclared name 'X_1'"):
        read_vnnlib(tmp_path / "undeclared.vnnlib", 1, 1)


def _read_text(tmp_path, text, inputs, outputs):
    path = tmp_path / "p.vnnlib"
    path.write_text(text)
    return read_vnnlib(path, inputs, outputs)


def test_vnnlib_combines_top_level_output_constraints_with_each_disjunct(tmp_path):
    # vnnlib 0.0.1 read the first polytope as Y_0 <= -3 (its first row overwrote the common one).
    prop = _read_text(tmp_path, "(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)"
                      "(assert (>= X_0 0))(assert (<= X_0 10))(assert (>= Y_0 3))"
                      "(assert (or (and (<= Y_0 5)) (and (<= Y_1 -100))))", 1, 2)
    (region,) = prop.regions
    first, second = region.polytopes
    inside = np.array([[3.0, 0.0], [4.0, 7.0], [5.0, -1.0]])
    assert first.contains(inside).all() and not first.contains(np.array([[2.9, 0.0], [5.1, 0.0]])).any()
    assert second.contains(np.array([[3.0, -100.0], [9.0, -200.0]])).all()
    assert not second.contains(np.array([[4.0, 0.0], [2.0, -150.0]])).any()


def test_vnnlib_refuses_input_constraints_that_are_not_a_box(tmp_path):
    header = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)"
    box = "(assert (>= X_0 0))(assert (<= X_0 5))(assert (>= X_1 0))(assert (<= X_1 5))"
    with pytest.raises(InputFileError, match="an input constraint relates X_0, X_1"):
        _read_text(tmp_path, header + box + "(assert (<= (+ X_0 X_1) 1))(assert (<= Y_0 0))", 2, 1)
    with pytest.raises(InputFileError, match="a constraint mixes inputs and outputs"):
        _read_text(tmp_path, header + box + "(assert (<= X_0 Y_0))", 2, 1)
    with pytest.raises(InputFileError, match="a product of variables is not linear"):
        _read_text(tmp_path, header + box + "(assert (<= (* X_0 Y_0) 1))", 2, 1)


def test_vnnlib_reads_assertions_in_any_order_and_drops_empty_cases(tmp_path):
    prop = _read_text(tmp_path, "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= Y_0 1))"
                      "(assert (or (and (>= X_0 0) (<= X_0 1)) (and (>= X_0 3) (<= X_0 2))))(assert (>= Y_0 -1))",
                      1, 1)
    (region,) = prop.regions  # the second box is empty: no point can be in it
    np.testing.assert_array_equal([region.lower, region.upper], [[0.0], [1.0]])
    (polytope,) = region.polytopes
    assert polytope.contains(np.array([[-1.0], [1.0]])).all() and not polytope.contains(np.array([[1.5]])).any()
    chained = _read_text(tmp_path, "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= -0.5 X_0 (- 0.25)))"
                         "(assert (>= (* 2 Y_0) 3))", 1, 1)
    np.testing.assert_array_equal([chained.regions[0].lower, chained.regions[0].upper], [[-0.5], [-0.25]])
    assert chained.regions[0].polytopes[0].contains(np.array([[1.5]]))[0]


def test_vnnlib_reads_the_vnncomp_dialect(tmp_path):
    path = tmp_path / "p.vnnlib"
    path.write_text("""; a comment
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (or (and (>= X_0 -1.0E-1) (<= X_0 0.5) (>= X_1 0) (<= X_1 1))
            (and (>= X_0 0.6) (<= X_0 1.0) (>= X_1 0) (<= X_1 1))))
(assert (or (and (>= Y_0 Y_1)) (and (<= (+ Y_1 (* 2.0 Y_0)) 3) (>= Y_1 -0.5))))
""")
    prop = read_vnnlib(path, 2, 2)
    assert len(prop.regions) == 2 and prop.cases == 4
    np.testing.assert_allclose(prop.regions[0].lower, [-0.1, 0.0])
    first, second = prop.regions[0].polytopes
    assert first.contains(np.array([[2.0, 1.0]]))[0] and not first.contains(np.array([[1.0, 2.0]]))[0]
    assert second.contains(np.array([[1.0, 0.0]]))[0] and not second.contains(np.array([[1.0, 2.0]]))[0]
    assert not second.contains(np.array([[0.0, -1.0]]))[0]


# --- deciding ------------------------------------------------------------------------------------


def test_a_property_that_holds_on_a_dense_grid_is_proven_and_survives_attacks(onnx_files, tmp_path):
    model = load_onnx(onnx_files["mlp"])
    centre = np.array([0.3, 0.6])
    top = int(model.logits(centre[None].astype(np.float32)).argmax())
    grid = np.stack(np.meshgrid(np.linspace(0.25, 0.35, 201), np.linspace(0.55, 0.65, 201)), -1).reshape(-1, 2)
    assert (onnxruntime_logits(model, grid.astype(np.float32)).argmax(axis=1) == top).all()  # exhaustive, to 5e-4
    prop = write_property(tmp_path, "holds", centre - 0.05, centre + 0.05, not_top(top, 3), 3)
    for methods in [("falsify", "ibp", "crown", "alpha-crown", "milp"), ("milp",)]:
        decision = decide(model, prop, DecideSettings(methods=methods, time_limit=60),
                          layers=graph_layers(model.network, model.input_shape))
        assert decision.result == "holds", decision.note
    attack_finds_nothing(model, prop)


def test_a_property_violated_at_a_known_point_gives_a_checked_counterexample(onnx_files, tmp_path):
    model = load_onnx(onnx_files["mlp"])
    x = np.random.default_rng(1).uniform(-5, 5, size=(2000, 2)).astype(np.float32)
    classes = onnxruntime_logits(model, x).argmax(axis=1)
    top = int(np.bincount(classes).argmax())
    known = x[classes != top][0]  # a point the top class does not win at
    prop = write_property(tmp_path, "violated", known - 0.01, known + 0.01, not_top(top, 3), 3)
    for methods in [("falsify", "crown"), ("crown", "milp")]:
        decision = decide(model, prop, DecideSettings(methods=methods, time_limit=60),
                          layers=graph_layers(model.network, model.input_shape))
        assert_checked(model, prop, decision)
        assert decision.decided_by == methods[0 if methods[0] == "falsify" else 1]


def test_a_property_only_the_milp_decides(onnx_files, tmp_path):
    """y_0 <= t over a box, with t just above the true maximum of y_0 (found by the MILP's own
    optimum on a dense grid): the bounds are too loose to prove it and no attack can break it."""
    model = load_onnx(onnx_files["mlp"])
    lower, upper = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 401), np.linspace(0, 1, 401)), -1).reshape(-1, 2)
    highest = float(model.logits(grid.astype(np.float32), dtype=torch.float64)[:, 0].max())
    # Every point of the box is within half a grid step (1/800 per coordinate) of the grid, and y_0
    # changes by at most its largest gradient's L1 norm times that: twice it above the grid's maximum.
    xt = torch.as_tensor(grid, dtype=torch.float32).requires_grad_(True)
    (gradient,) = torch.autograd.grad(model.network(xt)[:, 0].sum(), xt)
    threshold = highest + 2 * float(gradient.abs().sum(dim=1).max()) / 800 + 1e-4
    a = np.zeros(3)
    a[0] = -1.0  # the violation region: -y_0 <= -threshold, i.e. y_0 >= threshold
    prop = write_property(tmp_path, "milp", lower, upper, [[(a, -threshold)]], 3)
    layers = graph_layers(model.network, model.input_shape)
    without_milp = decide(model, prop, DecideSettings(methods=("falsify", "ibp", "crown", "alpha-crown")),
                          layers=layers)
    assert without_milp.result == "unknown"
    for backend in ("highs", "gurobi"):
        with_milp = decide(model, prop, DecideSettings(time_limit=60, backend=backend), layers=layers)
        assert with_milp.result == "holds" and with_milp.decided_by == "milp", (backend, with_milp.note)
    attack_finds_nothing(model, prop)
    # Just below the maximum the same property is violated, and the MILP's point is checked.
    below = write_property(tmp_path, "milp_below", lower, upper, [[(a, -(highest - 1e-3))]], 3)
    decision = decide(model, below, DecideSettings(methods=("crown", "milp"), time_limit=60), layers=layers)
    assert_checked(model, below, decision)


def test_a_tanh_network_gets_bounds_but_no_milp(onnx_files, tmp_path):
    model = load_onnx(onnx_files["tanh"])
    centre = np.array([0.5, 0.5])
    top = int(model.logits(centre[None].astype(np.float32)).argmax())
    small = write_property(tmp_path, "tanh_small", centre - 1e-3, centre + 1e-3, not_top(top, 3), 3)
    assert decide(model, small, DecideSettings()).result == "holds"
    attack_finds_nothing(model, small)


def test_a_cnn_property_is_decided_through_the_unrolled_convolution(onnx_files, tmp_path):
    model = load_onnx(onnx_files["cnn"])
    image = np.random.default_rng(2).uniform(0, 1, size=64)
    top = int(model.logits(image.reshape(1, 1, 8, 8).astype(np.float32)).argmax())
    layers = graph_layers(model.network, model.input_shape)
    tiny = write_property(tmp_path, "cnn_tiny", image - 1e-4, image + 1e-4, not_top(top, 4), 4)
    assert decide(model, tiny, DecideSettings(methods=("milp",)), layers=layers).result == "holds"
    attack_finds_nothing(model, tiny, points=1000)
    wide = write_property(tmp_path, "cnn_wide", np.zeros(64), np.ones(64), not_top(top, 4), 4)
    decision = decide(model, wide, DecideSettings(), layers=layers)
    assert_checked(model, wide, decision)


def test_a_solver_time_limit_is_a_timeout_never_a_holds(onnx_files, tmp_path):
    model = load_onnx(onnx_files["cnn"])
    image = np.random.default_rng(3).uniform(0, 1, size=64)
    top = int(model.logits(image.reshape(1, 1, 8, 8).astype(np.float32)).argmax())
    prop = write_property(tmp_path, "cnn_mid", image - 0.05, image + 0.05, not_top(top, 4), 4)
    decision = decide(model, prop, DecideSettings(methods=("milp",), time_limit=1e-9),
                      layers=graph_layers(model.network, model.input_shape))
    assert decision.result == "timeout"
