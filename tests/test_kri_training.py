"""The robustifying measures of the KRI zoo (Table 1 of Schwerdtner et al.) and the kri_train stage:
hand-computed formulas (GCE, Parseval retraction, distillation), augmentations seeded per image,
adversarial examples within their budget in float64, bit-identical training for one seed, and
one-line errors for data the model cannot read."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from nnassure.data.images import save_image_dataset, split_indices  # noqa: E402
from nnassure.data.signs import SIGN_CLASSES  # noqa: E402
from nnassure.kri.model import KriCNN, KriCNNSpec, load_kri_model, to_model_input  # noqa: E402
from nnassure.kri.training import (  # noqa: E402
    AdversarialCrafter,
    AdversarialTraining,
    Measures,
    TrainSettings,
    distillation_loss,
    gaussian_noise,
    guided_complement_entropy,
    parseval_deviation,
    parseval_init_,
    parseval_retraction_,
    parseval_scale,
    project_to_budget,
    soft_labels,
    standard_augment,
    train_variant,
)
from nnassure.paths import ExperimentPaths  # noqa: E402
from nnassure.stages import kri_data, kri_train  # noqa: E402
from nnassure.stages._common import run_stage  # noqa: E402
from nnassure.training.trainer import _fit  # noqa: E402

TINY = KriCNNSpec(image_size=16, channels=(4, 8), hidden=8, classes=6)


def _images(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy images: the class sets the mean colour of a centred square, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 6
    images = rng.random((n, size, size, 3), dtype=np.float32) * 0.3
    colours = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], np.float32)
    images[:, 4:12, 4:12, :] += 0.6 * colours[labels][:, None, None, :]
    return np.clip(images, 0, 1), labels.astype(np.int64)


# --- guided complement entropy ----------------------------------------------------------------

def test_gce_matches_a_hand_computed_case() -> None:
    # softmax (0.5, 0.3, 0.2), true class 0: complement (0.6, 0.4), K - 1 = 2.
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64))
    expected = 0.5 ** 0.2 * (0.6 * math.log(0.6) + 0.4 * math.log(0.4)) / math.log(2)  # -0.845...
    assert float(guided_complement_entropy(logits, torch.tensor([0]), 0.2)) == pytest.approx(expected, rel=1e-12)
    # alpha 0.5, true classes 0 and 2 (complement (0.625, 0.375), guide 0.2): the mean of the rows.
    rows = [0.5 ** 0.5 * (0.6 * math.log(0.6) + 0.4 * math.log(0.4)) / math.log(2),
            0.2 ** 0.5 * (0.625 * math.log(0.625) + 0.375 * math.log(0.375)) / math.log(2)]
    both = guided_complement_entropy(logits.repeat(2, 1), torch.tensor([0, 2]), 0.5)
    assert float(both) == pytest.approx(sum(rows) / 2, rel=1e-12)


def test_gce_equals_the_authors_formula_and_has_finite_gradients() -> None:
    """Against a transcription of the authors' loss (github.com/henry8527/GCE, with its guards)."""
    torch.manual_seed(0)
    logits = torch.randn(50, 6, dtype=torch.float64) * 3
    labels = torch.randint(0, 6, (50,))
    y_hat = torch.softmax(logits, 1)
    y_g = y_hat.gather(1, labels[:, None])
    px = y_hat / ((1 - y_g) + 1e-7)
    zero_hot = torch.ones_like(y_hat).scatter_(1, labels[:, None], 0)
    reference = ((y_g.squeeze(1) + 1e-7) ** 0.2 * (px * torch.log(px + 1e-10) * zero_hot).sum(1)).sum()
    reference = reference / len(labels) / math.log(5)
    # the guards shift the authors' value by about 1e-6
    assert float(guided_complement_entropy(logits, labels, 0.2)) == pytest.approx(float(reference), abs=1e-5)
    # Saturated logits (probabilities 0 and 1 in float32) keep the loss and its gradient finite.
    extreme = torch.tensor([[100.0, -100.0, 0.0, 3.0], [-50.0, 60.0, 60.0, -90.0]], requires_grad=True)
    loss = guided_complement_entropy(extreme, torch.tensor([0, 1]), 0.2)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(extreme.grad).all()
    with pytest.raises(ValueError, match="K >= 3"):
        guided_complement_entropy(torch.zeros(2, 2), torch.tensor([0, 1]), 0.2)


def test_gce_is_lower_for_a_confident_prediction_with_a_flat_complement() -> None:
    labels = torch.tensor([0])
    flat = guided_complement_entropy(torch.tensor([[4.0, 0.0, 0.0, 0.0]]), labels, 0.2)
    peaked = guided_complement_entropy(torch.tensor([[4.0, 3.0, 0.0, 0.0]]), labels, 0.2)
    unsure = guided_complement_entropy(torch.tensor([[0.0, 0.0, 0.0, 0.0]]), labels, 0.2)
    assert float(flat) < float(peaked) and float(flat) < float(unsure)
    assert float(flat) >= -1.0  # the normalised entropy is at most 1, the guide at most 1


# --- Parseval retraction ----------------------------------------------------------------------

def test_parseval_one_step_by_hand() -> None:
    dense = nn.Linear(2, 2)
    with torch.no_grad():
        dense.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    parseval_retraction_(dense, 0.1)
    # (1 + 0.1) W - 0.1 W W^T W = 1.1 diag(1, 2) - 0.1 diag(1, 8)
    torch.testing.assert_close(dense.weight, torch.tensor([[1.0, 0.0], [0.0, 1.4]]))
    conv = nn.Conv2d(2, 1, 3)
    w = torch.arange(18, dtype=torch.float32).reshape(1, 2, 3, 3) / 100
    with torch.no_grad():
        conv.weight.copy_(w)
    parseval_retraction_(conv, 0.01)
    m = 3 * w.reshape(1, 18).double()  # the reshaped kernel, scaled by sqrt(3 * 3)
    expected = ((1.01 * m - 0.01 * m @ m.T @ m) / 3).reshape(1, 2, 3, 3)
    torch.testing.assert_close(conv.weight.double(), expected)
    assert parseval_scale(conv) == 3.0 and parseval_scale(dense) == 1.0


def test_repeated_retraction_drives_the_frame_deviation_down() -> None:
    torch.manual_seed(1)
    model = KriCNN(TINY)
    before = parseval_deviation(model)
    for _ in range(300):
        parseval_retraction_(model, 0.05)
    after = parseval_deviation(model)
    assert before > 1.0 and after < 1e-3 * before
    fresh = KriCNN(TINY)
    parseval_init_(fresh, torch.Generator().manual_seed(0))
    assert parseval_deviation(fresh) < 1e-5


# --- distillation, noise, augmentation -------------------------------------------------------

def test_soft_labels_and_distillation_loss() -> None:
    logits = torch.tensor([[10.0, 0.0, -10.0]])
    torch.testing.assert_close(soft_labels(logits, 10.0), torch.softmax(torch.tensor([[1.0, 0.0, -1.0]]), 1))
    student = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    one_hot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(distillation_loss(student, one_hot, 1.0), F.cross_entropy(student, torch.tensor([0, 2])))
    targets = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    by_hand = -(targets * torch.log_softmax(student / 5.0, 1)).sum(1).mean()
    torch.testing.assert_close(distillation_loss(student, targets, 5.0), by_hand)


def test_gaussian_noise_is_seeded_clipped_and_of_the_right_scale() -> None:
    x = torch.full((64, 3, 16, 16), 0.5)
    a = gaussian_noise(x, 0.09, torch.Generator().manual_seed(3))
    b = gaussian_noise(x, 0.09, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, gaussian_noise(x, 0.09, torch.Generator().manual_seed(4)))
    assert float((a - x).std()) == pytest.approx(0.09, rel=0.03)
    edge = gaussian_noise(torch.ones(8, 3, 4, 4), 0.5, torch.Generator().manual_seed(0))
    assert float(edge.max()) == 1.0 and float(edge.min()) >= 0.0 and float(edge.min()) < 1.0
    assert torch.equal(x, torch.full((64, 3, 16, 16), 0.5))  # the input is not modified


def test_standard_augment_is_seeded_per_image_and_cheap() -> None:
    images, _ = _images(40, size=32)
    indices = np.arange(100, 140)
    first = standard_augment(images, indices, seed=0, epoch=1)
    # the same image, epoch and seed: the same result, whatever batch the image is in
    again = standard_augment(images[::-1], indices[::-1], seed=0, epoch=1)[::-1]
    assert np.array_equal(first, again)
    other_epoch = standard_augment(images, indices, seed=0, epoch=2)
    assert not np.array_equal(first, other_epoch) and not np.array_equal(first, images)
    assert first.dtype == np.float32 and first.min() >= 0 and first.max() <= 1
    # a small geometric change: most of the image survives (no flip, no large shift)
    assert float(np.abs(first - images).mean()) < 0.2
    started = time.process_time()
    standard_augment(np.repeat(images, 10, axis=0), np.arange(400), seed=0, epoch=1)
    assert (time.process_time() - started) / 400 < 2e-3  # measured about 0.1 ms per 32x32 image


# --- adversarial training ---------------------------------------------------------------------

def test_project_to_budget_holds_in_float64() -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random(20000, dtype=np.float32))
    eps = 0.03
    outward = (x + torch.tensor(eps, dtype=torch.float32)) * torch.tensor(1 + 1e-7)  # a bit beyond
    projected = project_to_budget(x, torch.cat([outward[:10000], x[10000:] - 0.05]), eps)
    distance = (projected.double() - x.double()).abs().max()
    assert float(distance) <= eps
    # it removes at most rounding: the projected points are within one float32 ulp of the ball's edge
    assert float(distance) > eps - 1e-7


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_crafted_examples_respect_their_budget_in_float64(attack: str) -> None:
    torch.manual_seed(0)
    model = KriCNN(TINY).train()
    images, labels = _images(96)
    x = torch.from_numpy(to_model_input(images))
    y = torch.from_numpy(labels)
    config = AdversarialTraining(attack=attack, eps=0.03, step=0.0075, iterations=7)
    crafter = AdversarialCrafter(model, config, TINY.input_shape, 6)
    x_adv = crafter.craft(x, y)
    # ART put the model in evaluation mode and left gradients: both restored for the loop
    assert model.training and all(p.grad is None and p.requires_grad for p in model.parameters())
    distance = (x_adv.double() - x.double()).abs().amax(dim=(1, 2, 3))
    assert float(distance.max()) <= 0.03 and float(distance.max()) > 0.029
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    with torch.no_grad():
        assert float(F.cross_entropy(model(x_adv), y)) > float(F.cross_entropy(model(x), y))
    assert torch.equal(x_adv, crafter.craft(x, y))  # no random start: the same examples again


# --- training ---------------------------------------------------------------------------------

def _fit_tiny(measures: Measures, seed: int = 0, epochs: int = 2) -> tuple[dict[str, torch.Tensor], object]:
    images, labels = _images(72, seed=1)
    settings = TrainSettings(lr=0.01, batch_size=16, max_epochs=epochs, patience=5, seed=seed)
    result = train_variant((images[:48], labels[:48]), (images[48:], labels[48:]), TINY, measures, settings,
                           progress=False)
    return {k: v.clone() for k, v in result.model.state_dict().items()}, result


def test_same_config_gives_bit_identical_weights() -> None:
    everything = Measures(standard_augment=True, noise_sigma=0.09, parseval_beta=0.001,
                          adversarial=AdversarialTraining(attack="pgd", eps=0.03, step=0.01, iterations=2,
                                                          weight=0.5))
    for measures in (everything, Measures(standard_augment=True, distillation_temperature=10.0),
                     Measures(gce_alpha=0.2)):
        first, _ = _fit_tiny(measures)
        second, _ = _fit_tiny(measures)
        assert all(torch.equal(first[k], second[k]) for k in first), measures
    other, _ = _fit_tiny(everything, seed=1)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_distillation_trains_a_teacher_then_a_student() -> None:
    _, result = _fit_tiny(Measures(distillation_temperature=20.0), epochs=3)
    assert result.teacher is not None and result.teacher["epochs"] == 3 and len(result.history) == 3
    assert set(result.teacher["accuracy"]) == {"train", "val"}
    assert len(result.teacher["history"]) == 3 and result.seconds > 0
    _, plain = _fit_tiny(Measures(), epochs=3)
    assert plain.teacher is None


def test_measures_change_training_and_learn() -> None:
    images, labels = _images(180, seed=2)
    settings = TrainSettings(lr=0.01, batch_size=32, max_epochs=15, patience=15, seed=0)
    for measures in (Measures(), Measures(gce_alpha=0.2), Measures(noise_sigma=0.09, standard_augment=True),
                     Measures(parseval_beta=0.0003),
                     Measures(adversarial=AdversarialTraining(attack="fgsm", eps=0.03))):
        result = train_variant((images[:120], labels[:120]), (images[120:], labels[120:]), TINY, measures,
                               settings, progress=False)
        assert result.accuracy["val"] > 0.6, (measures, result.accuracy)


def test_fit_hooks_see_every_batch_and_step() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x, y = torch.randn(10, 3), torch.tensor([0, 1] * 5)
    seen: list[tuple[int, tuple[int, ...]]] = []
    steps: list[int] = []

    def batch_loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, idx: torch.Tensor, epoch: int):
        seen.append((epoch, tuple(sorted(idx.tolist()))))
        assert torch.equal(xb, x[idx]) and torch.equal(yb, y[idx])
        return F.cross_entropy(model(xb), yb)

    _fit(model, F.cross_entropy, (x, y, x, y), 0.01, 0.0, 4, 2, 5, 0, False, "t", batch_loss=batch_loss,
         after_step=lambda m: steps.append(1))
    assert len(seen) == len(steps) == 6 and [e for e, _ in seen] == [1, 1, 1, 2, 2, 2]
    assert sorted(i for e, idx in seen if e == 1 for i in idx) == list(range(10))


def test_measures_from_config_and_refusals() -> None:
    measures = Measures.from_config({"description": "x", "noise_sigma": 0.09, "standard_augment": True,
                                     "adversarial": {"attack": "pgd", "eps": 0.03, "iterations": 3}})
    assert measures.noise_sigma == 0.09 and measures.adversarial.iterations == 3 and measures.gce_alpha is None
    assert measures.as_dict()["adversarial"]["attack"] == "pgd"
    with pytest.raises(ValueError, match="exclude"):
        Measures(gce_alpha=0.2, distillation_temperature=10.0)


# --- the stage --------------------------------------------------------------------------------

def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled", "threads=1",
            "kri.data.images_per_class=20", "kri.train.max_epochs=2", *extra]


def test_kri_data_and_train_stages_write_a_loadable_model(tmp_path: Path) -> None:
    run_stage("kri_data", kri_data.main, _args(tmp_path))
    run_stage("kri_train", kri_train.main, _args(tmp_path, "kri.variant=DistilledT10Augm"))
    loaded = load_kri_model(ExperimentPaths(tmp_path, "smoke").kri_model_stem("DistilledT10Augm"))
    meta = loaded.metadata
    assert meta["variant"] == "DistilledT10Augm" and set(meta["accuracy"]) == {"train", "val", "test"}
    assert meta["measures"]["distillation_temperature"] == 10.0 and meta["measures"]["standard_augment"] is True
    assert meta["classes"] == list(SIGN_CLASSES) and meta["image_size"] == loaded.model.spec.image_size == 32
    assert meta["epochs"] == 2 and 1 <= meta["best_epoch"] <= 2 and meta["seconds"] > 0
    assert meta["teacher"]["epochs"] == 2 and "history" not in meta["teacher"]


@pytest.mark.parametrize("shape", [(60, 32, 32), (60, 32, 24, 3), (60, 32, 32, 1)])
def test_images_the_model_cannot_read_are_one_line_errors(tmp_path: Path, capsys, shape) -> None:
    labels = np.arange(60) % 6
    path = ExperimentPaths(tmp_path, "smoke").kri_images
    path.parent.mkdir(parents=True)
    save_image_dataset(path, np.zeros(shape, np.float32), labels, split_indices(labels, (0.6, 0.2, 0.2), 0),
                       SIGN_CLASSES)
    with pytest.raises(SystemExit) as exit_info:
        run_stage("kri_train", kri_train.main, _args(tmp_path, "kri.variant=NNet"))
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("nnassure kri_train: error:") and str(path) in errors[0]
    assert not ExperimentPaths(tmp_path, "smoke").kri_model_stem("NNet").with_suffix(".json").exists()
