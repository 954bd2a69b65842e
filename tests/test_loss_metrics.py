"""Eqs. (1)-(2) (weighted BCE, class balance weight) and the metrics of Sec. 4.1 / Eqs. (3)-(4)."""

import math

import numpy as np
import pytest
import torch

from nnassure.metrics import classification_cost, classification_metrics, verified_accuracy
from nnassure.training import class_balance_weight, weighted_bce


def test_weighted_bce_hand_computed():
    # a = [0, ln 3], y = [1, 0], w_1 = 2 (balance), p = c10 / c01 = 10 / 1.
    # sample 0: -w p log sigma(0) = 2 * 10 * ln 2 = 20 ln 2
    # sample 1: -(1) log(1 - sigma(ln 3)) = -log(1 - 3/4) = ln 4 = 2 ln 2
    # mean = 22 ln 2 / 2 = 11 ln 2 = 7.624618986159398
    logits = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    labels = torch.tensor([1, 0])
    loss = weighted_bce(logits, labels, balance_weight=2.0, cost_fn=10.0)
    assert loss.item() == pytest.approx(11 * math.log(2), rel=1e-12)
    assert loss.item() == pytest.approx(7.624618986159398, rel=1e-12)


def test_weighted_bce_cost_ratio_not_absolute_costs():
    # p = c10 / c01 = 10 / 5 = 2: sample 0 -> 2 * 2 * ln 2 = 4 ln 2, sample 1 -> ln 4 = 2 ln 2; mean 3 ln 2.
    logits = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    labels = torch.tensor([1.0, 0.0])
    loss = weighted_bce(logits, labels, balance_weight=2.0, cost_fn=10.0, cost_fp=5.0)
    assert loss.item() == pytest.approx(3 * math.log(2), rel=1e-12)  # 2.0794415416798357


def test_weighted_bce_column_logits_and_unweighted_case():
    # Logits shaped (n, 1) as the model returns them; w = p = 1 gives the plain BCE.
    # a = [2, -1], y = [1, 1]: -log sigma(2) - log sigma(-1) = log(1 + e^-2) + log(1 + e^1)
    #   = 0.12692801104297252 + 1.3132616875182228 = 1.4401896985611953; mean 0.7200948492805977
    logits = torch.tensor([[2.0], [-1.0]], dtype=torch.float64)
    labels = torch.tensor([1, 1])
    loss = weighted_bce(logits, labels, balance_weight=1.0, cost_fn=1.0)
    assert loss.item() == pytest.approx(0.7200948492805977, rel=1e-12)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], labels.double())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_weighted_bce_is_stable_for_large_logits():
    # -log(1 - sigma(100)) = 100 + log(1 + e^-100) ~= 100; a naive log(1 - sigmoid) gives inf in float32.
    loss = weighted_bce(torch.tensor([100.0]), torch.tensor([0]), balance_weight=3.0, cost_fn=50.0)
    assert math.isfinite(loss.item())
    assert loss.item() == pytest.approx(100.0, rel=1e-6)
    # A confidently correct sample costs (almost) nothing whatever its weight.
    loss = weighted_bce(torch.tensor([100.0]), torch.tensor([1]), balance_weight=3.0, cost_fn=50.0)
    assert 0.0 <= loss.item() < 1e-30


def test_weighted_bce_gradient_weighting():
    # d l / d a = -w p (1 - sigma(a)) for y = 1; at a = 0: -2 * 10 * 0.5 = -10, and mean over 1 sample.
    logits = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    weighted_bce(logits, torch.tensor([1]), balance_weight=2.0, cost_fn=10.0).backward()
    assert logits.grad.item() == pytest.approx(-10.0)


def test_class_balance_weight():
    assert class_balance_weight(np.array([0, 0, 0, 1])) == pytest.approx(3.0)
    assert class_balance_weight(torch.tensor([1, 1, 1, 1, 0])) == pytest.approx(0.25)
    assert class_balance_weight([0, 1, 0, 1, 0, 0]) == pytest.approx(2.0)


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1], []])
def test_class_balance_weight_needs_both_classes(labels):
    with pytest.raises(ValueError, match="both classes"):
        class_balance_weight(np.array(labels, dtype=np.int64))


Y_TRUE = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
Y_PRED = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
# TN = 4, FP = 2, TP = 3, FN = 1.


def test_classification_metrics_hand_computed():
    m = classification_metrics(Y_TRUE, Y_PRED, cost_fn=10.0, cost_fp=1.0)
    assert m.accuracy == pytest.approx(0.7)  # 7 / 10
    assert m.f1_class1 == pytest.approx(2 / 3)  # 2*3 / (2*3 + FP 2 + FN 1) = 6/9
    assert m.f1_class0 == pytest.approx(8 / 11)  # 2*4 / (2*4 + 1 + 2)
    assert m.f1_macro == pytest.approx(23 / 33)  # (2/3 + 8/11) / 2 = 0.696969...
    assert m.false_negatives == 1
    assert m.false_positives == 2
    assert m.total_cost == pytest.approx(12.0)  # c10 * FN + c01 * FP = 10 * 1 + 1 * 2
    assert m.cost_per_sample == pytest.approx(1.2)
    assert set(m.as_dict()) == {
        "accuracy", "f1_macro", "f1_class0", "f1_class1", "false_negatives", "false_positives",
        "total_cost", "cost_per_sample",
    }


def test_classification_cost_weights_each_error_type():
    # c10 = 10 on the 1 false negative, c01 = 3 on the 2 false positives: 10 + 6 = 16.
    assert classification_cost(Y_TRUE, Y_PRED, cost_fn=10.0, cost_fp=3.0) == pytest.approx(16.0)
    m = classification_metrics(Y_TRUE, Y_PRED, cost_fn=10.0, cost_fp=3.0)
    assert m.total_cost == pytest.approx(16.0)
    assert m.cost_per_sample == pytest.approx(1.6)
    # Swapping the costs: 1 * 3 + 2 * 10 = 23.
    assert classification_cost(Y_TRUE, Y_PRED, cost_fn=3.0, cost_fp=10.0) == pytest.approx(23.0)


def test_classification_metrics_degenerate_predictions():
    # Everything predicted 0: class 1 has no true positive -> F1 0 (zero_division), F1_0 = 2*6/(12+4) = 0.75.
    m = classification_metrics(Y_TRUE, np.zeros(10, np.int64), cost_fn=50.0)
    assert m.accuracy == pytest.approx(0.6)
    assert m.f1_class1 == 0.0
    assert m.f1_class0 == pytest.approx(0.75)
    assert m.f1_macro == pytest.approx(0.375)
    assert (m.false_negatives, m.false_positives) == (4, 0)
    assert m.total_cost == pytest.approx(200.0)
    assert m.cost_per_sample == pytest.approx(20.0)
    perfect = classification_metrics(Y_TRUE, Y_TRUE, cost_fn=50.0)
    assert (perfect.accuracy, perfect.f1_macro, perfect.total_cost) == (1.0, 1.0, 0.0)


def test_classification_metrics_rejects_bad_shapes():
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), np.array([0, 1, 1]), cost_fn=1.0)
    with pytest.raises(ValueError):
        classification_metrics(np.array([], np.int64), np.array([], np.int64), cost_fn=1.0)


def test_verified_accuracy():
    # Eq. (4): verified (and hence correctly classified) samples over all samples.
    assert verified_accuracy(np.array([True, False, True, True])) == pytest.approx(0.75)
    assert verified_accuracy([1, 0, 0, 0, 0]) == pytest.approx(0.2)
    assert verified_accuracy(np.zeros(3, bool)) == 0.0
    with pytest.raises(ValueError):
        verified_accuracy(np.array([], dtype=bool))
