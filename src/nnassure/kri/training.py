"""Training of one model of the KRI zoo with the robustifying measures of Table 1 (Schwerdtner et
al., Sec. 5): standard image augmentations, Gaussian-noise augmentation, the guided complement
entropy loss, Parseval regularisation, defensive distillation and adversarial training.

Every variant is trained by one loop (:func:`nnassure.training.trainer._fit`: Adam, seeded
mini-batches, early stopping on the validation accuracy, ties broken by the lower validation
loss); a variant's measures enter through that loop's two hooks, the mini-batch loss (which
perturbs the batch and picks the loss) and a step after each optimiser update (the Parseval
retraction). Within one batch they compose in a fixed order: standard augmentation, then
Gaussian noise, then the adversarial examples crafted from that (augmented, noisy) batch, then the
loss (GCE, distillation's soft labels, or cross-entropy at the training temperature).

What is written by hand, and why:

* the guided complement entropy (Chen et al. 2019) is not in a library; it is computed here from
  log-softmaxes, which is the authors' formula without their ``1e-7``/``1e-10`` guards;
* the Parseval retraction (Cisse et al. 2017) is two matrix products per layer, in no library;
* defensive distillation (Papernot et al. 2016) is two trainings and a soft-label cross-entropy.

Augmentations come from albumentations (``A.Affine``), adversarial examples from ART
(``FastGradientMethod``, ``ProjectedGradientDescent`` on a ``PyTorchClassifier`` wrapping the
model being trained).

Measured at ``experiment=quick`` (1,260 training images of 32x32, at most 30 epochs, one thread of
the 2-vCPU development machine under load from other jobs): a plain model trains in 11-14 s of
CPU time; standard augmentation adds about 5 s (0.11-0.13 ms per image and epoch), distillation
doubles the time (teacher and student), FGSM training takes about 2.5 times, PGD (7 steps) about
8 times a plain model's. With Table 1's Parseval step beta = 0.0003 under Adam the weights leave
the constraint (max ||M M^T - I||_F about 22 after training, 133 without Parseval); beta = 0.01
holds it closer (about 4) at a lower accuracy (88 % instead of 97 %).

Determinism: the initial weights are drawn right after ``torch.manual_seed``, the batch order
from the loop's own generator, every augmentation from a seed derived from (seed, stream, epoch,
image index), the Gaussian noise from a torch generator seeded once per training, and PGD starts
at the clean image (no random start), so the same arguments give bit-identical weights on one
machine and thread count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnassure.kri.model import KriCNN, KriCNNSpec, predict_logits, to_model_input
from nnassure.training.trainer import _fit

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402  (after the environment variable: it calls the network otherwise)
import cv2  # noqa: E402

# Stream ids of the derived seeds, so that the teacher's and the student's augmentations and
# noise differ, and neither repeats the batch order's generator.
_TEACHER, _STUDENT = 0, 1


@dataclass(frozen=True)
class AdversarialTraining:
    """Adversarial training (Goodfellow et al. 2015: FGSM; Madry et al. 2018: PGD, L-infinity):
    loss = (1 - weight) * CE(clean) + weight * CE(adversarial)."""

    attack: str  # "fgsm" or "pgd"
    eps: float
    step: float = 0.0075  # PGD step
    iterations: int = 7  # PGD steps
    weight: float = 0.5


@dataclass(frozen=True)
class Measures:
    """The robustifying measures of one variant (a row of Table 1); ``None`` leaves one out."""

    standard_augment: bool = False
    noise_sigma: float | None = None
    gce_alpha: float | None = None
    parseval_beta: float | None = None
    distillation_temperature: float | None = None
    adversarial: AdversarialTraining | None = None

    def __post_init__(self) -> None:
        if self.gce_alpha is not None and self.distillation_temperature is not None:
            raise ValueError("the GCE loss and defensive distillation exclude each other (one training loss)")
        if self.distillation_temperature is not None and self.distillation_temperature <= 1:
            raise ValueError(f"distillation temperature {self.distillation_temperature}: expected > 1")
        if self.adversarial is not None and self.adversarial.attack not in ("fgsm", "pgd"):
            raise ValueError(f"unknown adversarial attack {self.adversarial.attack!r}; expected fgsm or pgd")

    @classmethod
    def from_config(cls, variant: Mapping[str, Any]) -> Measures:
        """From a ``kri.variants.<name>`` entry (its ``description`` and ``capacity`` are ignored)."""
        adversarial = variant.get("adversarial")
        return cls(
            standard_augment=bool(variant.get("standard_augment", False)),
            noise_sigma=_optional_float(variant.get("noise_sigma")),
            gce_alpha=_optional_float(variant.get("gce_alpha")),
            parseval_beta=_optional_float(variant.get("parseval_beta")),
            distillation_temperature=_optional_float(variant.get("distillation_temperature")),
            adversarial=None if adversarial is None else AdversarialTraining(
                attack=str(adversarial["attack"]), eps=float(adversarial["eps"]),
                step=float(adversarial.get("step", 0.0075)), iterations=int(adversarial.get("iterations", 7)),
                weight=float(adversarial.get("weight", 0.5))),
        )

    def as_dict(self) -> dict[str, Any]:
        """Every measure (``None``/``False`` where unused), as the model file's metadata stores it."""
        return asdict(self)


@dataclass(frozen=True)
class TrainSettings:
    """What every model of the zoo shares (``kri.train``)."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 30
    patience: int = 5
    seed: int = 0

    @classmethod
    def from_config(cls, train: Mapping[str, Any]) -> TrainSettings:
        return cls(lr=float(train["lr"]), weight_decay=float(train["weight_decay"]),
                   batch_size=int(train["batch_size"]), max_epochs=int(train["max_epochs"]),
                   patience=int(train["patience"]), seed=int(train["seed"]))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- standard image augmentation -------------------------------------------------------------

def standard_augmentation() -> A.Compose:
    """Keras-style standard image augmentation (Chollet 2015, ``ImageDataGenerator`` with
    ``width/height_shift_range=0.1``, ``zoom_range=0.1``, ``rotation_range=15``), as the paper's
    Table 1 uses it: a random affine map per image, translation up to +-10 % of the side, scale
    0.9-1.1, rotation +-15 degrees, bilinear, the border reflected (no black corners, which the
    signs' backgrounds never show). No horizontal flip: signs carry text and arrows."""
    return A.Compose([A.Affine(translate_percent=(-0.1, 0.1), scale=(0.9, 1.1), rotate=(-15.0, 15.0),
                               interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_REFLECT_101, p=1.0)],
                     seed=0)


def augmentation_seed(seed: int, stream: int, epoch: int, index: int) -> int:
    """The albumentations seed of one training image in one epoch (a 32-bit word of NumPy's
    SeedSequence of the four integers)."""
    return int(np.random.SeedSequence([int(seed), int(stream), int(epoch), int(index)]).generate_state(1)[0])


def standard_augment(images: np.ndarray, indices: np.ndarray, seed: int, epoch: int, stream: int = 0,
                     transform: A.Compose | None = None) -> np.ndarray:
    """Augment NHWC float32 images in [0, 1], image ``i`` with the seed of
    ``(seed, stream, epoch, indices[i])``: the same image in the same epoch is always transformed
    the same way, whatever batch it falls in. Cost: about 0.1 ms per 32x32 image on one core."""
    transform = standard_augmentation() if transform is None else transform
    out = np.empty_like(images, dtype=np.float32)
    for i, (image, index) in enumerate(zip(images, indices, strict=True)):
        transform.set_random_seed(augmentation_seed(seed, stream, epoch, int(index)))
        out[i] = transform(image=np.ascontiguousarray(image, dtype=np.float32))["image"]
    # Bilinear interpolation of values in [0, 1] stays in [0, 1] up to rounding.
    return np.clip(out, 0.0, 1.0, out=out)


def _augment_nchw(x: torch.Tensor, indices: torch.Tensor, seed: int, epoch: int, stream: int,
                  transform: A.Compose) -> torch.Tensor:
    nhwc = x.detach().numpy().transpose(0, 2, 3, 1)
    augmented = standard_augment(nhwc, indices.numpy(), seed, epoch, stream, transform)
    return torch.from_numpy(to_model_input(augmented))


# --- Gaussian noise ---------------------------------------------------------------------------

def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian-noise augmentation (Table 1's Gauss03/Gauss09): x + N(0, sigma^2) per pixel and
    channel, clipped to the valid range [0, 1], drawn from ``generator``."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return (x + sigma * noise).clamp_(0.0, 1.0)


# --- guided complement entropy ----------------------------------------------------------------

def guided_complement_entropy(logits: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    """Guided complement entropy (Chen et al., ICCV 2019, "Improving adversarial robustness via
    guided complement entropy"), averaged over the batch:

        GCE = 1/N sum_i yhat_ig^alpha / log(K-1) * sum_{j != g} (yhat_ij / (1 - yhat_ig)) log(yhat_ij / (1 - yhat_ig))

    with ``yhat = softmax(logits)``, g the true class and K the number of classes: minus the
    normalised entropy of the complement classes' distribution, weighted by the guiding factor
    ``yhat_g^alpha``. Minimising it flattens the wrong classes' probabilities while raising the
    true one's. This is the authors' code (github.com/henry8527/GCE, ``GuidedComplementEntropy``:
    the same sum, divided by the batch size and log(K-1)) without its guards ``(1 - yhat_g) + 1e-7``,
    ``yhat_g + 1e-7`` and ``log(p + 1e-10)``: the complement distribution yhat_j / (1 - yhat_g) is
    exactly the softmax of the logits with the true class left out, so its logarithm is a
    log-softmax, finite for any logits.
    """
    if logits.ndim != 2 or logits.shape[1] < 3:
        raise ValueError(f"logits of shape {tuple(logits.shape)}: GCE needs (n, K) with K >= 3 "
                         "(it divides by log(K-1))")
    classes = logits.shape[1]
    true = F.one_hot(labels, classes).bool()
    log_guide = torch.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
    # The true class drops out of the complement (probability 0, and 0 log 0 = 0). Its -inf
    # log-probability is replaced by 0 before the product: a torch.where after it would still
    # send 0 * inf = NaN into the gradient.
    complement_log = torch.log_softmax(logits.masked_fill(true, float("-inf")), dim=1).masked_fill(true, 0.0)
    complement = complement_log.exp().masked_fill(true, 0.0)
    negative_entropy = (complement * complement_log).sum(dim=1)
    return (torch.exp(alpha * log_guide) * negative_entropy).mean() / float(np.log(classes - 1))


# --- Parseval networks ------------------------------------------------------------------------

def _parseval_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def parseval_scale(layer: nn.Module) -> float:
    """The factor the Parseval constraint applies to a layer's weight matrix: 1 for a dense layer;
    for a k x k convolution sqrt(k*k) = k, on the kernel reshaped to (out, in*k*k). Each input
    pixel enters at most k*k output patches, so the convolution's operator norm is at most k times
    the reshaped kernel's; Cisse et al. (ICML 2017, their section on convolutional layers) rescale
    the reshaped kernel by this factor so that a Parseval kernel gives a convolution of norm <= 1."""
    if isinstance(layer, nn.Conv2d):
        return float(np.sqrt(layer.kernel_size[0] * layer.kernel_size[1]))
    return 1.0


@torch.no_grad()
def parseval_retraction_(model: nn.Module, beta: float) -> None:
    """One Parseval retraction step (Cisse et al., ICML 2017, the orthonormality update) on every
    dense and convolutional weight, in place: with M = scale * W reshaped to (out, in*k*k),

        M <- (1 + beta) M - beta M M^T M,

    which moves every non-zero singular value s of M to (1 + beta) s - beta s^3, towards 1 (the
    rows of M towards an orthonormal set, a Parseval tight frame). Biases are not constrained."""
    for layer in _parseval_layers(model):
        weight = layer.weight
        scale = parseval_scale(layer)
        matrix = weight.reshape(weight.shape[0], -1) * scale
        retracted = (1 + beta) * matrix - beta * (matrix @ matrix.T @ matrix)
        weight.copy_((retracted / scale).reshape(weight.shape))


@torch.no_grad()
def parseval_init_(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """Start on the constraint, as Cisse et al. do (orthonormal initialisation): every scaled,
    reshaped weight matrix semi-orthogonal (``nn.init.orthogonal_``), biases zero. With the tiny
    retraction step of Table 1 (beta = 0.0003) a default initialisation would still be far from
    Parseval after a short training: each step moves a singular value s by only beta (s - s^3)."""
    for layer in _parseval_layers(model):
        weight = layer.weight
        matrix = torch.empty(weight.shape[0], weight[0].numel(), dtype=weight.dtype)
        nn.init.orthogonal_(matrix, generator=generator)
        weight.copy_((matrix / parseval_scale(layer)).reshape(weight.shape))
        if layer.bias is not None:
            layer.bias.zero_()


def parseval_deviation(model: nn.Module) -> float:
    """max over layers of ||M M^T - I||_F (or ||M^T M - I||_F for a tall M), M as in
    :func:`parseval_retraction_`: 0 for a Parseval network."""
    worst = 0.0
    for layer in _parseval_layers(model):
        matrix = layer.weight.detach().reshape(layer.weight.shape[0], -1).double() * parseval_scale(layer)
        gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
        worst = max(worst, float(torch.linalg.norm(gram - torch.eye(len(gram), dtype=gram.dtype))))
    return worst


# --- defensive distillation -------------------------------------------------------------------

def soft_labels(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's soft labels softmax(logits / T) (Papernot et al., S&P 2016)."""
    return torch.softmax(teacher_logits / temperature, dim=1)


def distillation_loss(student_logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of the student's softmax at temperature T against the soft labels ``targets``
    (Papernot et al.: the distilled network is trained at the same temperature T on the teacher's
    soft labels, and deployed at temperature 1), averaged over the batch."""
    return -(targets * torch.log_softmax(student_logits / temperature, dim=1)).sum(dim=1).mean()


# --- adversarial training ---------------------------------------------------------------------

def project_to_budget(x: torch.Tensor, x_adv: torch.Tensor, eps: float) -> torch.Tensor:
    """``x_adv`` clipped into [0, 1] and into the L-infinity ball of radius ``eps`` around ``x``
    such that the bound holds exactly in float64: ART adds eps in float32, whose rounding can
    leave a pixel up to half an ulp outside the ball. The float32 bounds are x -+ eps rounded
    inwards."""
    x64 = x.double()
    upper = (x64 + eps).float()
    upper = torch.where(upper.double() > x64 + eps, torch.nextafter(upper, torch.full_like(upper, -np.inf)), upper)
    lower = (x64 - eps).float()
    lower = torch.where(lower.double() < x64 - eps, torch.nextafter(lower, torch.full_like(lower, np.inf)), lower)
    return torch.minimum(torch.maximum(x_adv, lower), upper).clamp(0.0, 1.0)


class AdversarialCrafter:
    """Adversarial examples of the current weights by ART (Nicolae et al. 2019): the model being
    trained wrapped once in a ``PyTorchClassifier`` (clip values (0, 1), cross-entropy), which
    shares its parameters, so every batch is attacked white-box on the weights of that moment.

    FGSM (Goodfellow et al. 2015) or PGD (Madry et al. 2018) in the L-infinity norm, on the true
    labels. PGD starts at the clean image (``num_random_init=0``): Madry et al. start at a random
    point of the ball, but ART draws that point from NumPy's global generator, which would make
    the weights depend on global state. ART's ``loss_gradient`` puts the model in evaluation mode
    and leaves the attack's parameter gradients behind; :meth:`craft` restores the mode and clears
    the gradients, so the loop's own backward pass starts from none.
    """

    def __init__(self, model: nn.Module, config: AdversarialTraining, input_shape: tuple[int, int, int],
                 classes: int) -> None:
        from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier

        self.model = model
        self.config = config
        self.classifier = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=input_shape,
                                            nb_classes=classes, clip_values=(0.0, 1.0), device_type="cpu")
        if config.attack == "fgsm":
            self.attack = FastGradientMethod(self.classifier, norm=np.inf, eps=config.eps, batch_size=1 << 16)
        else:
            self.attack = ProjectedGradientDescent(self.classifier, norm=np.inf, eps=config.eps,
                                                   eps_step=config.step, max_iter=config.iterations,
                                                   num_random_init=0, batch_size=1 << 16, verbose=False)

    def craft(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial examples of the NCHW batch ``x`` with labels ``y``, within the budget."""
        was_training = self.model.training
        x_np = x.detach().numpy().astype(np.float32, copy=False)
        labels = np.eye(self.classifier.nb_classes, dtype=np.float32)[y.numpy()]
        x_adv = torch.from_numpy(np.asarray(self.attack.generate(x_np, y=labels), dtype=np.float32))
        self.model.train(was_training)
        self.model.zero_grad(set_to_none=True)
        return project_to_budget(x.detach(), x_adv, self.config.eps)


# --- training ---------------------------------------------------------------------------------

@dataclass
class KriTrainResult:
    """A trained model of the zoo (best epoch's weights, evaluation mode) and how it got there."""

    model: KriCNN
    accuracy: dict[str, float]  # clean accuracy per split given ("train", "val", "test")
    epochs: int
    best_epoch: int
    seconds: float  # wall time, the teacher's training included
    history: list[dict[str, float]] = field(default_factory=list)
    teacher: dict[str, Any] | None = None  # distillation: the teacher's epochs, best epoch, accuracy, history


def _as_tensors(split: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(to_model_input(split[0])), torch.as_tensor(split[1], dtype=torch.int64)


def _accuracy_and_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float,
                       batch_size: int = 1024) -> tuple[float, float]:
    correct, total = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size])
            labels = y[start:start + batch_size]
            total += float(F.cross_entropy(logits / temperature, labels, reduction="sum"))
            correct += int((logits.argmax(dim=1) == labels).sum())
    return correct / len(x), total / len(x)


def _noise_generator(seed: int, stream: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), int(stream), 2]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _train_one(spec: KriCNNSpec, data: tuple[torch.Tensor, ...], measures: Measures, settings: TrainSettings,
               stream: int, temperature: float, teacher: nn.Module | None, progress: bool,
               description: str) -> tuple[KriCNN, Any]:
    xt, yt, xv, yv = data
    torch.manual_seed(settings.seed + stream)
    model = KriCNN(spec)
    if measures.parseval_beta is not None:
        parseval_init_(model, torch.Generator().manual_seed(settings.seed + stream))
    transform = standard_augmentation() if measures.standard_augment else None
    noise = _noise_generator(settings.seed, stream) if measures.noise_sigma is not None else None
    crafter = (AdversarialCrafter(model, measures.adversarial, spec.input_shape, spec.classes)
               if measures.adversarial is not None else None)

    def loss_of(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if teacher is not None:
            with torch.no_grad():
                targets = soft_labels(teacher(x), temperature)
            return distillation_loss(logits, targets, temperature)
        if measures.gce_alpha is not None:
            return guided_complement_entropy(logits, y, measures.gce_alpha)
        return F.cross_entropy(logits / temperature, y)

    def batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        if transform is not None:
            x = _augment_nchw(x, idx, settings.seed, epoch, stream, transform)
        if noise is not None:
            x = gaussian_noise(x, measures.noise_sigma, noise)
        if crafter is None:
            return loss_of(model(x), x, y)
        weight = measures.adversarial.weight
        x_adv = crafter.craft(x, y)
        adversarial = loss_of(model(x_adv), x_adv, y)
        if weight >= 1.0:
            return adversarial
        return (1 - weight) * loss_of(model(x), x, y) + weight * adversarial

    def validation(model: nn.Module) -> tuple[tuple[float, ...], dict[str, float]]:
        accuracy, loss = _accuracy_and_loss(model, xv, yv, temperature)
        return (accuracy, -loss), {"val_loss": loss, "val_accuracy": accuracy}

    after_step: Callable[[nn.Module], None] | None = None
    if measures.parseval_beta is not None:
        beta = measures.parseval_beta

        def after_step(model: nn.Module) -> None:
            parseval_retraction_(model, beta)

    fitted = _fit(model, F.cross_entropy, (xt, yt, xv, yv), settings.lr, settings.weight_decay, settings.batch_size,
                  settings.max_epochs, settings.patience, settings.seed + stream, progress, description,
                  validation=validation, batch_loss=batch_loss, after_step=after_step)
    return model, fitted


def train_variant(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], spec: KriCNNSpec,
                  measures: Measures, settings: TrainSettings, test: tuple[np.ndarray, np.ndarray] | None = None,
                  progress: bool = True, description: str = "train") -> KriTrainResult:
    """Train one model of the zoo: a :class:`KriCNN` of ``spec`` on NHWC float32 images in [0, 1]
    with int64 labels, with the variant's ``measures``; deterministic for a seed.

    Defensive distillation (Papernot et al., S&P 2016) trains a teacher with softmax at temperature
    T on the hard labels, then a student of the same architecture (its own initial weights) on the
    teacher's soft labels softmax(teacher(x) / T) of the same (augmented) batch, at temperature T;
    both early-stopped. The returned model is the student, deployed at temperature 1 (its logits
    unscaled). Returned accuracies are clean, of the kept weights, on every split given.
    """
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    expected = (spec.image_size, spec.image_size, spec.in_channels)
    for name, (x, y) in splits.items():
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"{name} split: {len(x)} images but {len(y)} labels (need at least one)")
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"{name} split: images of shape {tuple(x.shape[1:])}, the spec expects {expected}")
        if y.min() < 0 or y.max() >= spec.classes:
            raise ValueError(f"{name} split: labels must lie in 0..{spec.classes - 1}, got {y.min()}..{y.max()}")
    started = time.perf_counter()
    data = (*_as_tensors(train), *_as_tensors(val))
    teacher_record: dict[str, Any] | None = None
    teacher: nn.Module | None = None
    temperature = measures.distillation_temperature
    if temperature is not None:
        teacher, fitted = _train_one(spec, data, measures, settings, _TEACHER, temperature, None, progress,
                                     f"{description} (teacher)")
        teacher.eval()
        teacher_record = {"epochs": len(fitted.history), "best_epoch": fitted.best_epoch,
                          "accuracy": _accuracies(teacher, splits), "history": fitted.history}
        model, fitted = _train_one(spec, data, measures, settings, _STUDENT, temperature, teacher, progress,
                                   f"{description} (student)")
    else:
        model, fitted = _train_one(spec, data, measures, settings, _TEACHER, 1.0, None, progress, description)
    model.eval()
    return KriTrainResult(model=model, accuracy=_accuracies(model, splits), epochs=len(fitted.history),
                          best_epoch=fitted.best_epoch, seconds=time.perf_counter() - started,
                          history=fitted.history, teacher=teacher_record)


def _accuracies(model: nn.Module, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    return {name: float(np.mean(predict_logits(model, to_model_input(x)).argmax(axis=1) == y))
            for name, (x, y) in splits.items()}
