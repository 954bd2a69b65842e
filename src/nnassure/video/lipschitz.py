r"""A provable global Lipschitz constant of the logit margins of the flow classifier (Eq. 5).

Wu & Kwiatkowska's grid width (Eq. 5 of Sec. 3.3, which makes the tau-grid of Def. 6 / Thm. 1
cover the flow ball) divides the margin of the top class y by ``max_c (Lip_y + Lip_c)``. What the
proof needs is a constant of the *margin* g_{y,c} = logit_y - logit_c:

    |g_{y,c}(x) - g_{y,c}(x')| <= L_{y,c} ||x - x'||_p     for all flow sequences x, x',

and since g_{y,c} is the difference of the two logits, L_{y,c} <= Lip_y + Lip_c for any logit
constants; Eq. (5) therefore still holds with L_{y,c} in place of (Lip_y + Lip_c), and the grid it
allows is never finer. :func:`margin_lipschitz` returns the matrix of these L_{y,c}.

The norm p in {1, 2, inf} is over the whole flow sequence (all flows x 2 x grid x grid
entries), as the MSR of Def. 6 measures it. With a mask only the masked flows (time steps) may
differ between x and x' (the manipulated flows of the experiments); the others are identical.
An input mask likewise restricts the differing entries (A*'s subspace of Player II's dimensions);
then step t's conv1 matrix A is replaced by its masked columns A[:, S_t] in step 1 below (dx_t is
zero outside S_t, so A dx_t = A[:, S_t] dx_t[S_t]), and a_t = 0 for steps without masked entries.

Derivation (the network of :mod:`nnassure.video.model`, Def. 9's N_C then N_R)
---------------------------------------------------------------------------------
Write x = (x_1, ..., x_T), dx_t = x'_t - x_t and a_t = ||dx_t||_p (a_t = 0 for unmasked steps).
Every quantity below is a worst case over *all* inputs, so the constant is global. Hidden-size
vectors are measured in one l_r norm, r in {1, 2, inf}; the bound is computed for each r and the
smallest is returned (each is a valid bound, so their minimum is too). r = p is the natural
choice; the others are sometimes smaller for p = 1 or inf.

1. The CNN. eta_t = relu(P relu(B relu(A x_t + a) + b) + p) with A, B the (bias-free) linear maps
   of conv1 and conv2 and P of ``project``. For every pair of reals, relu(u') - relu(u) =
   d (u' - u) with some d in [0, 1], so d eta_t = D3 P D2 B D1 A dx_t with diagonal D_k whose
   entries lie in [0, 1] (exact finite differences; biases cancel). Such D has operator norm
   <= 1 for every l_r, so

   (1a) ||d eta_t||_r <= K a_t with K = ||A||_{p->r} ||B||_{r->r} ||P||_{r->r}; and

   (1b) elementwise |D3 P D2 B D1 A| <= |P||B||A| =: M (triangle inequality), and l_r norms are
        monotone (|u| <= |v| elementwise => ||u||_r <= ||v||_r), so for any matrix X
        ||X d eta_t||_r <= || |X| M |dx_t| ||_r <= || |X| M ||_{p->r} a_t. The same argument on part
        of the chain lets K be ||M||_{p->r}, || |B||A| ||_{p->r} ||P||_{r->r} or
        ||A||_{p->r} || |P||B| ||_{r->r} as well; the smallest of the four is used.

   The matrices are built exactly: each layer applied in float64 to the identity basis (one
   non-zero input, so every entry is one weight times 1, no rounding). Operator norms: exact
   where they have a closed form (p->p for p = 1: max column abs sum; p = inf: max row abs sum;
   p = 2: largest singular value; 1->r: max column l_r norm; p->inf: max row l_{p*} norm) and an
   upper bound otherwise (2->1: sum of row l2 norms; inf->2: l2 norm of the row abs sums;
   inf->1: sum of all abs entries; each min'ed with the norm-equivalence bound via the spectral
   norm). Both are what the proof needs: an upper bound of the operator norm.

2. The gates. z_t = W_z eta_t + U_z h_{t-1} + b_z (no U_z term at t = 1), so
   D_{z,t} := ||dz_t||_r <= ||W_z d eta_t||_r + ||U_z dh_{t-1}||_r.

   (2b) Step 4 only ever needs weighted sums sum_z w_z D_{z,t} (w_z >= 0), bounded jointly:
        sum_z w_z ||X_z v||_r <= J(X, w) ||v|| with J the smallest of sum_z w_z ||X_z||; for
        r = 1 the norm of the stacked matrix (w_z X_z)_z (the sum of l1 norms is the l1 norm of
        the stack); for r = 2, by Cauchy-Schwarz, sqrt(sum_z w_z) times the spectral norm of the
        stack (sqrt(w_z) X_z)_z. Applied to (W_z, d eta_t) with (1a), to (|W_z| M, |dx_t|) with
        (1b) (the smaller is used), and to (U_z, dh_{t-1}) with ||dh_{t-1}||_r <= H_{t-1}.

3. Elementwise facts: sigmoid s has |s(u') - s(u)| <= |u' - u| / 4 and values in (0, 1); tanh has
   |tanh u' - tanh u| <= |u' - u| and values in (-1, 1) (mean value theorem, |s'| <= 1/4,
   |tanh'| <= 1); for vectors ||u (.) v||_r <= ||u||_inf ||v||_r. The cell stays bounded:
   |c_1| = |s(i) tanh(g)| < 1 and |c_t| <= s(f)|c_{t-1}| + |s(i) tanh(g)| < |c_{t-1}| + 1, so
   ||c_{t-1}||_inf < t - 1 for t >= 2.

4. The cell and the hidden state, by the exact finite-difference identity
   u'v' - uv = u'(v' - v) + v(u' - u) (no derivative, so it holds for any two inputs):
      dc_1 = s(i')(tanh g' - tanh g) + tanh(g)(s(i') - s(i))
          => C_1 <= D_g + D_i / 4;
      dc_t = s(f') dc_{t-1} + c_{t-1}(s(f') - s(f)) + [the same two terms for i, g]
          => C_t <= C_{t-1} + (t - 1) D_f / 4 + D_i / 4 + D_g;
      dh_t = s(o')(tanh c'_t - tanh c_t) + tanh(c_t)(s(o') - s(o))
          => H_t <= C_t + D_o / 4 = C_{t-1} + (t - 1) D_f / 4 + D_i / 4 + D_g + D_o / 4.
   The D-sums in C_t and in H_t are each bounded with (2b) (two weight vectors per step). Every
   coefficient is non-negative, so by induction H_T <= sum_t kappa_t a_t for a vector kappa >= 0
   computed by running the recursion on coefficient vectors.

5. The margin: g = (w_y - w_c)^T h_T + const, so by Hoelder
   |dg| <= ||w_y - w_c||_{r*} ||dh_T||_r <= ||w_y - w_c||_{r*} sum_t kappa_t a_t, with r* the dual
   exponent (1/r + 1/r* = 1). For p in {1, 2, inf}, ||dx||_p = ||(a_t)_t||_p (the p-norm of the
   per-step p-norms), so Hoelder again gives sum_t kappa_t a_t <= ||kappa_M||_{p*} ||dx||_p with
   kappa_M the entries of the masked steps: max kappa for p = 1, the l2 norm for p = 2, the sum
   for p = inf. Hence L_{y,c} = ||w_y - w_c||_{r*} ||kappa_M||_{p*}.

Rounding. The weights are float32 numbers, exact in float64; the constant is that of the real
function these weights define (a float32 evaluation differs from it by rounding). Every step
above is a float64 sum, product or SVD of at most ~10^5 non-negative terms, whose relative error
is below 10^-10; each operator norm and the result are multiplied by (1 + 1e-9), which covers it.

Tightness. The bound is attained on networks whose gates saturate (tests: the slope ascent
reaches 98 % of it), but on trained flow classifiers it is loose: every sup is taken at once and
the recurrence compounds them, ~4-5x per step backwards in time. On the quick-size model
(7 flows, 8 x 8 grid, 32 hidden) it exceeds the largest slope found by random pairs and gradient
ascent (:func:`lipschitz_slope_check`, :func:`lipschitz_slope_ascent`) by a factor of 1.7e4
(smallest over the margins; median 4e4) for l2, 1.3e5 (2.5e5) for l1 and 2.1e5 (3.9e5) for linf.
It is a sound, not a sharp, grid width for Eq. (5); a constant local to the flow ball (interval
bounds of the gate pre-activations over the ball) would be far tighter, but is not this one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nnassure.video.model import GATES, FlowLSTM

NORMS = ("l1", "l2", "linf")
_EXPONENT = {"l1": 1.0, "l2": 2.0, "linf": math.inf}
# Covers the float64 rounding of the norms and of the recursion (module docstring, "Rounding").
_ROUNDING = 1.0 + 1e-9


def _exponent(norm: str) -> float:
    try:
        return _EXPONENT[norm]
    except KeyError:
        raise ValueError(f"unknown norm {norm!r}: expected one of {', '.join(NORMS)}") from None


def _dual(p: float) -> float:
    return math.inf if p == 1 else 1.0 if p == math.inf else p / (p - 1)


def _spectral(matrix: np.ndarray) -> float:
    """The largest singular value in float64 (torch's LAPACK: it follows torch's thread count,
    where numpy's multi-threaded BLAS took seconds per SVD on busy cores)."""
    return float(torch.linalg.matrix_norm(torch.as_tensor(np.asarray(matrix, dtype=np.float64)), ord=2))


def _abs_product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """|left| |right| in float64 (non-negative terms: relative rounding error below n * 2^-53)."""
    return (torch.as_tensor(np.abs(left)) @ torch.as_tensor(np.abs(right))).numpy()


def operator_norm(matrix: np.ndarray, p_in: float, p_out: float) -> float:
    """An upper bound of ``max ||A v||_{p_out} / ||v||_{p_in}`` for p in {1, 2, inf}.

    Exact for p_in = p_out, for p_in = 1 and for p_out = inf; for 2->1, inf->2 and inf->1 (NP-hard
    in general) the smaller of two standard upper bounds. Multiplied by (1 + 1e-9) for rounding.
    """
    a = np.abs(np.asarray(matrix, dtype=np.float64))
    if a.size == 0:
        return 0.0
    if p_in == 1:  # the extreme points of the l1 ball are the signed unit vectors
        value = float(np.max(np.linalg.norm(a, ord=p_out, axis=0)))
    elif p_out == math.inf:  # each output row is maximised separately by Hoelder's equality case
        value = float(np.max(np.linalg.norm(a, ord=_dual(p_in), axis=1)))
    elif p_in == p_out == 2:
        value = _spectral(matrix)
    elif p_in == 2 and p_out == 1:  # ||Av||_1 <= sum_i ||A_i||_2 ||v||_2, and <= sqrt(m) ||Av||_2
        spectral = _spectral(matrix)
        value = min(float(np.sum(np.linalg.norm(a, axis=1))), math.sqrt(a.shape[0]) * spectral)
    elif p_in == math.inf and p_out == 2:  # |(Av)_i| <= ||A_i||_1 ||v||_inf, and ||v||_2 <= sqrt(n) ||v||_inf
        spectral = _spectral(matrix)
        value = min(float(np.linalg.norm(a.sum(axis=1))), math.sqrt(a.shape[1]) * spectral)
    elif p_in == math.inf and p_out == 1:  # ||Av||_1 <= sum_ij |A_ij| ||v||_inf
        spectral = _spectral(matrix)
        value = min(float(a.sum()), math.sqrt(a.shape[0] * a.shape[1]) * spectral)
    else:
        raise ValueError(f"unsupported operator norm {p_in}->{p_out}")
    return value * _ROUNDING


def layer_matrices(model: FlowLSTM) -> dict[str, np.ndarray]:
    """The float64 matrices of the network's linear maps (biases dropped: they cancel in differences).

    ``conv1`` (in: 2 x grid x grid), ``conv2`` (in: channels x grid x grid) and ``project`` act on
    flattened (channel, row, column) vectors as the model flattens them; ``W_z``/``U_z`` are the
    input/hidden gate weights and ``classify`` the logit rows.
    """
    spec = model.spec
    with torch.no_grad():
        def conv_matrix(conv: torch.nn.Conv2d, channels: int, grid: int) -> np.ndarray:
            n = channels * grid * grid
            basis = torch.eye(n, dtype=torch.float64).reshape(n, channels, grid, grid)
            out = F.conv2d(basis, conv.weight.detach().double(), None, conv.stride, conv.padding)
            return out.reshape(n, -1).T.numpy()  # column j = image of basis vector j

        matrices = {"conv1": conv_matrix(model.conv1, 2, spec.grid),
                    "conv2": conv_matrix(model.conv2, spec.conv_channels, spec.grid),
                    "project": model.project.weight.detach().double().numpy(),
                    "classify": model.classify.weight.detach().double().numpy()}
        for z in GATES:
            matrices[f"W_{z}"] = model.input_gates[z].weight.detach().double().numpy()
            matrices[f"U_{z}"] = model.hidden_gates[z].weight.detach().double().numpy()
    return matrices


def _cnn_bound(m: dict[str, np.ndarray], p: float, r: float) -> tuple[float, np.ndarray]:
    """K of step 1 and the abs-product matrix |P||B||A| (all ReLU patterns at once, step 1b)."""
    abs_ba = _abs_product(m["conv2"], m["conv1"])
    abs_chain = _abs_product(m["project"], abs_ba)
    k = min(operator_norm(m["conv1"], p, r) * operator_norm(m["conv2"], r, r) * operator_norm(m["project"], r, r),
            operator_norm(abs_ba, p, r) * operator_norm(m["project"], r, r),
            operator_norm(m["conv1"], p, r) * operator_norm(_abs_product(m["project"], m["conv2"]), r, r),
            operator_norm(abs_chain, p, r))
    return k, abs_chain


def _joint(matrices: Sequence[np.ndarray], weights: Sequence[float], p: float, r: float) -> float:
    """An upper bound of ``sup_v sum_z w_z ||X_z v||_r / ||v||_p`` (w_z >= 0), step 2b."""
    pairs = [(x, w) for x, w in zip(matrices, weights, strict=True) if w > 0]
    if not pairs:
        return 0.0
    value = sum(w * operator_norm(x, p, r) for x, w in pairs)
    if r == 1:  # sum_z w_z ||X_z v||_1 is the l1 norm of the stacked (w_z X_z) v
        value = min(value, operator_norm(np.vstack([w * x for x, w in pairs]), p, 1))
    elif r == 2:  # Cauchy-Schwarz: sum_z w_z n_z <= sqrt(sum_z w_z) sqrt(sum_z w_z n_z^2)
        total = sum(w for _, w in pairs)
        value = min(value, math.sqrt(total) * operator_norm(np.vstack([math.sqrt(w) * x for x, w in pairs]), p, 2))
    return value * _ROUNDING


def step_coefficients(model: FlowLSTM, norm: str, hidden_norm: str | None = None,
                      input_mask: np.ndarray | None = None) -> np.ndarray:
    """kappa of the derivation (step 4): ``||dh_T||_r <= sum_t kappa_t ||dx_t||_p``, shape (flows,).

    ``hidden_norm`` is r (default: p). ``input_mask`` (booleans of the input shape) says which flow
    entries may differ: step t's CNN bound then uses only the columns of conv1 of its masked
    entries (dx_t is zero elsewhere, so A dx_t = A[:, S_t] dx_t[S_t]); default all.
    """
    p = _exponent(norm)
    r = p if hidden_norm is None else _exponent(hidden_norm)
    m = layer_matrices(model)
    mask = np.ones(model.spec.input_shape, dtype=bool) if input_mask is None else input_mask
    input_weights = [m[f"W_{z}"] for z in GATES]
    per_step: dict[bytes, tuple[float, list[np.ndarray]]] = {}  # CNN bounds per distinct step mask
    for t in range(model.spec.flows):
        key = mask[t].tobytes()
        if key not in per_step and mask[t].any():
            k, abs_chain = _cnn_bound({**m, "conv1": m["conv1"][:, mask[t].reshape(-1)]}, p, r)
            per_step[key] = (k, [_abs_product(w, abs_chain) for w in input_weights])
    hidden_weights = [m[f"U_{z}"] for z in GATES]
    steps = model.spec.flows
    cell = np.zeros(steps)  # coefficient vectors over (a_1, ..., a_T) of C_{t-1} and H_{t-1}
    hidden = np.zeros(steps)
    for t in range(1, steps + 1):
        # Step 4's weights of D_z in C_t (gates i, f, g, o; (t - 1) bounds ||c_{t-1}||_inf, and the
        # model has no forget term at t = 1) and in H_t (the same plus D_o / 4).
        in_cell = [0.25, (t - 1) / 4, 1.0, 0.0]
        in_hidden = [0.25, (t - 1) / 4, 1.0, 0.25]
        new = []
        for weights in (in_cell, in_hidden):
            unit = np.zeros(steps)
            if mask[t - 1].any():  # else a_t = 0: the step's coefficient does not matter
                k, input_chains = per_step[mask[t - 1].tobytes()]
                unit[t - 1] = min(_joint(input_weights, weights, r, r) * k, _joint(input_chains, weights, p, r))
            recurrent = _joint(hidden_weights, weights, r, r) * hidden if t > 1 else 0.0
            new.append(cell + unit + recurrent)
        cell, hidden = new
    return hidden * _ROUNDING


def _mask_array(model: FlowLSTM, flows_mask: Sequence[bool] | None, input_mask: np.ndarray | None = None
                ) -> np.ndarray:
    """The entries that may differ, booleans of the input shape: the masked flows and input entries."""
    steps, shape = model.spec.flows, model.spec.input_shape
    mask = np.ones(shape, dtype=bool)
    if flows_mask is not None:
        flows = np.asarray(list(flows_mask))
        if flows.shape != (steps,) or flows.dtype != bool:
            raise ValueError(f"flows_mask must be {steps} booleans (one per flow), got {list(flows_mask)!r}")
        mask[~flows] = False
    if input_mask is not None:
        entries = np.asarray(input_mask)
        if entries.shape != shape or entries.dtype != bool:
            raise ValueError(f"input_mask must be booleans of shape {shape}, got {entries.dtype} {entries.shape}")
        mask &= entries
    return mask


def margin_lipschitz(model: FlowLSTM, norm: str, flows_mask: Sequence[bool] | None = None,
                     input_mask: np.ndarray | None = None) -> np.ndarray:
    """L[y, c]: a provable global Lipschitz constant of logit_y - logit_c w.r.t. ``norm`` (module docstring).

    ``norm`` in {"l1", "l2", "linf"} is over the whole flow sequence; with ``flows_mask`` (one bool
    per flow) only the masked flows differ between the two inputs, and with ``input_mask`` (booleans
    of shape ``(flows, 2, grid, grid)``, e.g. A*'s subspace S) only those entries. Symmetric, zero
    diagonal, and L[y, c] <= Lip_y + Lip_c, so Eq. (5) holds with L[y, c] in place of (Lip_y + Lip_c).
    """
    p = _exponent(norm)
    mask = _mask_array(model, flows_mask, input_mask)
    steps = mask.reshape(model.spec.flows, -1).any(axis=1)
    rows = layer_matrices(model)["classify"]
    differences = rows[:, None, :] - rows[None, :, :]  # [y, c] = w_y - w_c
    best = np.full((len(rows), len(rows)), np.inf)
    for hidden_norm in NORMS:
        r = _exponent(hidden_norm)
        kappa = step_coefficients(model, norm, hidden_norm, mask)[steps]
        time_factor = float(np.linalg.norm(kappa, ord=_dual(p))) if kappa.size else 0.0
        output = np.linalg.norm(differences, ord=_dual(r), axis=2)
        best = np.minimum(best, output * time_factor * _ROUNDING)
    return best


def _flat_norm(delta: torch.Tensor, p: float) -> torch.Tensor:
    return torch.linalg.vector_norm(delta.flatten(1), ord=p, dim=1)


def _margins(model: FlowLSTM, flows: torch.Tensor) -> torch.Tensor:
    logits = model(flows)
    return logits[:, :, None] - logits[:, None, :]  # [n, y, c]


def _double(model: FlowLSTM) -> FlowLSTM:
    import copy

    return copy.deepcopy(model).double().eval()


def _centres(model: FlowLSTM, x: np.ndarray) -> torch.Tensor:
    centres = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if centres.ndim == 4:
        centres = centres[None]
    if tuple(centres.shape[1:]) != model.spec.input_shape:
        raise ValueError(f"flows of shape {tuple(centres.shape)}; the model expects (n, {model.spec.input_shape})")
    return centres


def _random_directions(shape: tuple[int, ...], p: float, mask: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Random directions of unit p-norm, zero outside ``mask`` (input shape; half Gaussian, half signs)."""
    v = rng.standard_normal(shape)
    v[: shape[0] // 2] = np.sign(v[: shape[0] // 2]) * rng.uniform(0.5, 1.0, v[: shape[0] // 2].shape)
    v[:, ~mask] = 0.0
    v = torch.as_tensor(v)
    return v / _flat_norm(v, p).reshape(-1, *([1] * (v.ndim - 1)))


def lipschitz_slope_check(model: FlowLSTM, x: np.ndarray, norm: str, pairs: int, radius: float,
                          rng: np.random.Generator, flows_mask: Sequence[bool] | None = None,
                          input_mask: np.ndarray | None = None) -> np.ndarray:
    """The largest slope |g(x1) - g(x2)| / ||x1 - x2||_p observed over ``pairs`` random pairs, per margin.

    x1 = centre + radius * u (u any direction; a global constant must hold everywhere) and
    x2 = x1 + radius * s * v with s uniform in (0.01, 1] and v a unit direction on the masked flows
    only; centres cycle through ``x`` (one ``(flows, 2, grid, grid)`` sequence or a batch). Float64.
    Returns the (classes, classes) matrix of observed slopes, a lower bound of the best constant.
    """
    p = _exponent(norm)
    mask = _mask_array(model, flows_mask, input_mask)
    net = _double(model)
    centres = _centres(model, x)
    best = np.zeros((model.spec.classes, model.spec.classes))
    with torch.no_grad():
        for start in range(0, pairs, 256):
            n = min(256, pairs - start)
            base = centres[torch.arange(start, start + n) % len(centres)]
            shape = tuple(base.shape)
            x1 = base + radius * _random_directions(shape, p, np.ones_like(mask), rng)
            scale = torch.as_tensor(rng.uniform(0.01, 1.0, n)).reshape(-1, 1, 1, 1, 1)
            delta = radius * scale * _random_directions(shape, p, mask, rng)
            slope = (_margins(net, x1 + delta) - _margins(net, x1)).abs() / _flat_norm(delta, p)[:, None, None]
            best = np.maximum(best, slope.max(dim=0).values.numpy())
    return best


def lipschitz_slope_ascent(model: FlowLSTM, x: np.ndarray, norm: str, radius: float, steps: int = 100,
                           rng: np.random.Generator | None = None, flows_mask: Sequence[bool] | None = None,
                           lr: float = 0.05, input_mask: np.ndarray | None = None) -> np.ndarray:
    """Slopes of pairs found by maximising |g_{y,c}(x1) - g_{y,c}(x2)| / ||x1 - x2||_p by gradient ascent.

    One pair per ordered margin (y, c) and centre in ``x``: x1 starts near the centre, x2 - x1 a
    random direction of norm ``radius`` on the masked flows and entries; Adam (float64) moves
    both, the difference kept on the masked flows and entries. Returns the (classes, classes) matrix of the best slopes
    seen during the ascent, a lower bound of the best constant that the bound must dominate.
    """
    p = _exponent(norm)
    mask = _mask_array(model, flows_mask, input_mask)
    rng = np.random.default_rng(0) if rng is None else rng
    net = _double(model)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    centres = _centres(model, x)
    k = model.spec.classes
    ys, cs = (torch.as_tensor(v.ravel()) for v in np.meshgrid(np.arange(k), np.arange(k), indexing="ij"))
    keep = ys != cs
    ys, cs = ys[keep], cs[keep]
    n = len(ys) * len(centres)
    ys, cs = ys.repeat(len(centres)), cs.repeat(len(centres))
    base = centres.repeat_interleave(len(keep.nonzero()), dim=0)
    shape = tuple(base.shape)
    x1 = (base + 0.5 * radius * _random_directions(shape, p, np.ones_like(mask), rng)).requires_grad_(True)
    delta = (radius * _random_directions(shape, p, mask, rng)).requires_grad_(True)
    gate = torch.as_tensor(mask, dtype=torch.float64)[None]
    optimizer = torch.optim.Adam([x1, delta], lr=lr * radius)
    best = np.zeros((k, k))
    rows = torch.arange(n)
    for _ in range(steps + 1):
        d = delta * gate
        gap = _margins(net, x1 + d)[rows, ys, cs] - _margins(net, x1)[rows, ys, cs]
        slope = gap.abs() / _flat_norm(d, p).clamp_min(1e-12)
        observed = slope.detach().numpy()
        np.maximum.at(best, (ys.numpy(), cs.numpy()), observed)
        optimizer.zero_grad()
        (-slope.sum()).backward()
        optimizer.step()
    return best
