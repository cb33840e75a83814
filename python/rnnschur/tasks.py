"""The four tasks of the paper as small frozen configurations that draw batches.

Every task has ``sample(batch_size, rng, *, split="train", dtype=np.float32)`` returning
``(x, y, mask)``:

* ``x``: ``(T, B, n_inputs)``, time-major, ``dtype``;
* ``y``: ``(T, B, n_outputs)``, ``dtype``;
* ``mask``: bool, broadcastable to ``(T, B, n_outputs)``; the entries that enter the loss
  and the metrics.

The same ``numpy.random.Generator`` state gives the same batch. ``split="test"`` draws
held-out items where a task has held-out parameters (the sine frequencies, unless
``SineGeneration(eval_freqs="train")``); for the other tasks it draws from the training
distribution (held-out *sequences*, not a different distribution). Every held-out
evaluation in the package (the training monitor, :func:`rnnschur.evaluate`, the ablation
profiles) samples ``split="test"``, so a task's parameters decide what is scored.
Every task is rebuilt from ``task.to_dict()`` by :func:`task_from_dict` (checkpoints
store that dictionary).

The paper (Dräger 2026, sections 3-4) fixes only the sizes. Everything else is chosen
here from the standard versions of the tasks and documented on each class.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike

from ._validation import check_choice, check_int, check_real

__all__ = [
    "TASKS",
    "ContextIntegration",
    "CopyTask",
    "FlipFlop",
    "SineGeneration",
    "Task",
    "make_task",
    "task_from_dict",
]

_SPLITS = ("train", "test")
#: What ``SineGeneration``'s test split is scored on.
_EVAL_FREQS = ("unseen", "train")
#: ``ContextIntegration`` targets.
_CDI_TARGETS = ("integral", "drift")


class Task:
    """Base class: validation of ``sample`` arguments and (de)serialisation.

    Subclasses are frozen dataclasses with a class attribute ``name`` and the
    properties ``n_inputs``, ``n_outputs`` and ``length``.
    """

    name: ClassVar[str]
    # Declared for the type checker: every subclass is a dataclass.
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def n_inputs(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_outputs(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def length(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name": ..., **parameters}`` (JSON-serialisable)."""
        params = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            params[f.name] = list(value) if isinstance(value, tuple) else value
        return {"name": self.name, **params}

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        *,
        split: str = "train",
        dtype: DTypeLike = np.float32,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw a batch ``(x, y, mask)``; see the module docstring for shapes."""
        batch_size = check_int("batch_size", batch_size, 1)
        if not isinstance(rng, np.random.Generator):
            msg = f"rng must be a numpy.random.Generator; got {type(rng).__name__}"
            raise TypeError(msg)
        if split not in _SPLITS:
            msg = f"split must be 'train' or 'test'; got {split!r}"
            raise ValueError(msg)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            msg = f"dtype must be float32 or float64; got {dtype}"
            raise TypeError(msg)
        x, y, mask = self._sample(batch_size, rng, split, dtype)
        # The core's lean entry point wants C-contiguous arrays.
        return np.ascontiguousarray(x), np.ascontiguousarray(y), mask

    def _sample(  # pragma: no cover - abstract
        self,
        batch_size: int,
        rng: np.random.Generator,
        split: str,
        dtype: np.dtype[Any],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


@dataclass(frozen=True)
class CopyTask(Task):
    """Fixed-delay cyclic copy task (paper section 3).

    ``symbols`` random vectors in ``{-1, +1}^dim`` (independent fair signs) are presented
    one per step at ``t = 0 .. symbols-1``; afterwards the input is zero for ``lags``
    steps while the network replays the stored sequence cyclically: the target at replay
    step ``ℓ = 1 .. lags`` (time ``t = symbols + ℓ - 1``) is symbol ``(ℓ - 1) mod
    symbols``. There is no cue channel: the sequence length is fixed, so the onset of
    replay is implied by the clock. The mask selects the replay steps only (all output
    dimensions), so the mean replay accuracy over the lags is the sign agreement over the
    masked entries. ``T = symbols + lags``. Train and test splits are the same
    distribution (test = fresh sequences).

    Source: the paper's definition (s = 8, d = 8, 128 lags), a fixed-delay variant of the
    copying-memory benchmark (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).
    """

    symbols: int = 8
    dim: int = 8
    lags: int = 128
    name: ClassVar[str] = "copy"

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", check_int("symbols", self.symbols, 1))
        object.__setattr__(self, "dim", check_int("dim", self.dim, 1))
        object.__setattr__(self, "lags", check_int("lags", self.lags, 1))

    @property
    def n_inputs(self) -> int:
        return self.dim

    @property
    def n_outputs(self) -> int:
        return self.dim

    @property
    def length(self) -> int:
        return self.symbols + self.lags

    @property
    def replay_steps(self) -> slice:
        """Time indices of the replay lags ``ℓ = 1 .. lags`` (the masked steps)."""
        return slice(self.symbols, self.symbols + self.lags)

    def _sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        split: str,  # noqa: ARG002
        dtype: np.dtype[Any],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, d = self.symbols, self.dim
        seq = np.where(rng.random((s, batch_size, d)) < 0.5, -1.0, 1.0).astype(dtype)
        x = np.zeros((self.length, batch_size, d), dtype=dtype)
        x[:s] = seq
        y = np.zeros_like(x)
        lag_symbol = np.arange(self.lags) % s
        y[self.replay_steps] = seq[lag_symbol]
        mask = np.zeros((self.length, 1, 1), dtype=bool)
        mask[self.replay_steps] = True
        return x, y, mask


@dataclass(frozen=True)
class FlipFlop(Task):
    """``bits``-bit flip-flop (Sussillo & Barak 2013).

    Each bit has its own input channel. At every step, independently per bit, a pulse
    occurs with probability ``pulse_prob``; a pulse is ``+1`` or ``-1`` with equal
    probability, otherwise the input is 0. Every bit receives a pulse at ``t = 0`` so
    that the target is defined from the start. The target of a bit at time ``t`` is the
    sign of the most recent pulse on that bit (at or before ``t``: the network must
    switch on the step of the pulse). All steps count (mask all true). With
    ``input_noise = σ > 0`` every input entry (pulse or not, all steps) gets independent
    Gaussian noise ``σ ξ``, ``ξ ~ N(0, 1)``, while the target stays the sign of the last
    *clean* pulse; the default ``σ = 0`` adds none (and draws nothing, so the batches are
    those of a task without the parameter). Train and test are the same distribution.

    The generator follows Golub & Sussillo's FixedPointFinder ``FlipFlopData`` (forced
    pulse at t = 0, random signs, Bernoulli pulse times). Their default pulse
    probability is 0.5 for 64-step trials; the task statement here asks for *sparse*
    pulses, as drawn in Sussillo & Barak's figure 1, so the default is 0.2 (on average
    one pulse every 5 steps per bit, half of which flip the state), which makes the
    network hold each bit for several steps within the 25-step trial. Input noise is
    off by default: the paper mentions none, and FixedPointFinder's generator has none.

    Parameters
    ----------
    bits : int, >= 1
        Number of bits (input = output channels).
    length : int, >= 1
        Trial length ``T``.
    pulse_prob : float in [0, 1]
        Per-step, per-bit pulse probability (after the forced pulse at ``t = 0``).
    input_noise : float, >= 0
        Standard deviation ``σ`` of the Gaussian noise added to every input entry.
    """

    bits: int = 3
    length: int = 25
    pulse_prob: float = 0.2
    input_noise: float = 0.0
    name: ClassVar[str] = "flipflop"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", check_int("bits", self.bits, 1))
        object.__setattr__(self, "length", check_int("length", self.length, 1))
        object.__setattr__(
            self,
            "pulse_prob",
            check_real("pulse_prob", self.pulse_prob, low=0.0, high=1.0),
        )
        object.__setattr__(
            self, "input_noise", check_real("input_noise", self.input_noise, low=0.0)
        )

    @property
    def n_inputs(self) -> int:
        return self.bits

    @property
    def n_outputs(self) -> int:
        return self.bits

    def _sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        split: str,  # noqa: ARG002
        dtype: np.dtype[Any],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        shape = (self.length, batch_size, self.bits)
        # One uniform per entry: u < p/2 gives a -1 pulse, p/2 <= u < p a +1 pulse.
        u = rng.random(shape, dtype=np.float32)
        p = np.float32(self.pulse_prob)
        x = (u < p).astype(dtype)
        x[u < 0.5 * p] = -1.0
        x[0] = 1.0  # forced pulse at t = 0, fair sign
        x[0][u[0] < 0.5] = -1.0
        # Running "last pulse": y_t = x_t where a pulse occurs, else y_{t-1}.
        keep = 1.0 - np.abs(x)
        y = np.empty_like(x)
        y[0] = x[0]
        tmp = np.empty_like(x[0])
        for t in range(1, self.length):
            np.multiply(keep[t], y[t - 1], out=tmp)
            np.add(x[t], tmp, out=y[t])
        if self.input_noise > 0.0:
            # Drawn after the pulses, so pulse times and targets are those of the
            # noiseless task for the same generator state.
            noise = rng.standard_normal(shape)
            x += (self.input_noise * noise).astype(dtype)
        mask = np.ones((1, 1, 1), dtype=bool)
        return x, y, mask


@dataclass(frozen=True)
class SineGeneration(Task):
    """Frequency-cued sine generation (Sussillo & Barak 2013).

    A grid of ``n_freqs`` angular frequencies ``ω_j = ω_min + (ω_max - ω_min) j /
    (n_freqs - 1)`` (radians per step), ``j = 0 .. n_freqs-1``. A trial picks one
    ``j``; the single input channel carries the static cue ``u_j = j / n_freqs + 0.25``
    at every step and the target is ``y_t = sin(ω_j t)`` for ``t = 0 .. length-1``
    (phase 0 at cue onset). All steps count.

    Defaults follow Sussillo & Barak: 51 frequencies from 0.1 to 0.6 rad per step and
    cue ``j/51 + 0.25``. Held-out frequencies: every ``holdout_every``-th grid point
    starting at ``holdout_offset`` (default ``j = 2, 7, ..., 47``: 10 interior
    frequencies); ``split="train"`` draws ``j`` uniformly from the other 41.
    ``eval_freqs`` chooses what ``split="test"`` (every held-out evaluation: the
    training monitor, :func:`rnnschur.evaluate`, the ablation profiles) is scored on:
    ``"unseen"`` (default) draws ``j`` uniformly from the held-out 10, so the test set
    measures interpolation to unseen frequencies; ``"train"`` draws it uniformly from
    the 41 training frequencies, i.e. from the training distribution (the paper's
    reading: held-out rollouts from the task distribution 𝒟; a trial is determined by
    its ``j``, so these are the trained trajectories themselves). Training is the same
    for both.

    Parameters
    ----------
    length : int, >= 1
        Trial length ``T``.
    n_freqs : int, >= 2
        Grid size.
    omega_min, omega_max : float, 0 < omega_min < omega_max
        Grid ends (rad per step).
    holdout_every : int, >= 2
    holdout_offset : int, 0 <= holdout_offset < min(holdout_every, n_freqs)
        Held-out grid indices ``holdout_offset, holdout_offset + holdout_every, ...``.
    eval_freqs : {"unseen", "train"}
        Frequencies of the test split (see above).
    """

    length: int = 50
    n_freqs: int = 51
    omega_min: float = 0.1
    omega_max: float = 0.6
    holdout_every: int = 5
    holdout_offset: int = 2
    eval_freqs: str = "unseen"
    name: ClassVar[str] = "sine"

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", check_int("length", self.length, 1))
        object.__setattr__(self, "n_freqs", check_int("n_freqs", self.n_freqs, 2))
        lo = check_real("omega_min", self.omega_min, low=0.0, low_open=True)
        hi = check_real("omega_max", self.omega_max, low=0.0, low_open=True)
        if not hi > lo:
            msg = f"omega_max must exceed omega_min; got {hi} <= {lo}"
            raise ValueError(msg)
        object.__setattr__(self, "omega_min", lo)
        object.__setattr__(self, "omega_max", hi)
        every = check_int("holdout_every", self.holdout_every, 2)
        offset = check_int("holdout_offset", self.holdout_offset, 0)
        if offset >= min(every, self.n_freqs):
            msg = (
                f"holdout_offset must be < min(holdout_every, n_freqs) = "
                f"{min(every, self.n_freqs)}; got {offset}"
            )
            raise ValueError(msg)
        object.__setattr__(self, "holdout_every", every)
        object.__setattr__(self, "holdout_offset", offset)
        check_choice("eval_freqs", self.eval_freqs, _EVAL_FREQS)

    @property
    def n_inputs(self) -> int:
        return 1

    @property
    def n_outputs(self) -> int:
        return 1

    @property
    def omegas(self) -> np.ndarray:
        """All grid frequencies ``ω_j`` (rad per step), float64 ``(n_freqs,)``."""
        return np.linspace(self.omega_min, self.omega_max, self.n_freqs)

    @property
    def cues(self) -> np.ndarray:
        """Static input ``u_j = j / n_freqs + 0.25`` for every grid index, float64."""
        return np.arange(self.n_freqs) / self.n_freqs + 0.25

    @property
    def test_indices(self) -> np.ndarray:
        """Grid indices of the held-out frequencies."""
        return np.arange(self.holdout_offset, self.n_freqs, self.holdout_every)

    @property
    def train_indices(self) -> np.ndarray:
        """Grid indices used for training (the complement of :attr:`test_indices`)."""
        return np.setdiff1d(np.arange(self.n_freqs), self.test_indices)

    def _sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        split: str,
        dtype: np.dtype[Any],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        unseen = split == "test" and self.eval_freqs == "unseen"
        pool = self.test_indices if unseen else self.train_indices
        j = pool[rng.integers(0, pool.size, size=batch_size)]
        t = np.arange(self.length, dtype=np.float64)[:, None]
        y = np.sin(t * self.omegas[j][None, :])[:, :, None].astype(dtype)
        x = np.broadcast_to(self.cues[j].astype(dtype), (self.length, batch_size))
        x = np.ascontiguousarray(x)[:, :, None]
        mask = np.ones((1, 1, 1), dtype=bool)
        return x, y, mask


@dataclass(frozen=True)
class ContextIntegration(Task):
    """Context-dependent integration (after Mante et al. 2013).

    Inputs (4 channels): two noisy evidence streams and a one-hot context cue.
    Per trial, each stream ``k = 0, 1`` has a drift ``μ_k = ±c`` with the sign uniform
    and ``c`` uniform over ``coherences`` (Mante et al.'s three coherence levels per
    modality; neurogym's 5/15/50 %), and at every step ``u_{k,t} = μ_k + noise_std ·
    ξ_{k,t}``, ``ξ ~ N(0, 1)`` white. The context ``k*`` is uniform over {0, 1};
    channels 2 and 3 carry the one-hot ``k*`` at every step. The target is the running
    integral of the cued stream, chosen by ``target``:

    * ``"integral"`` (default): ``y_t = dt · Σ_{τ<=t} u_{k*,τ}``, the noisy evidence
      integrated (the contextual integrator of Sussillo's computation-through-dynamics
      tutorial: integrate drift + noise, not only the drift);
    * ``"drift"``: ``y_t = dt · Σ_{τ<=t} μ_{k*} = dt (t + 1) μ_{k*}``, the integral of
      the noiseless drift alone (the coherence-signed mean evidence): the network must
      average the noise out rather than follow it. The drift is not observable exactly
      from the evidence so far; the best possible output, ``dt (t + 1)`` times the
      posterior mean of ``μ_{k*}``, leaves an FVU floor (about 0.22 at the default
      noise and coherences, about 3e-4 at ``noise_std = 0.1``).

    The inputs are the same for both (the same generator state gives the same ``x``).
    All steps count.

    Defaults: coherences (0.05, 0.15, 0.5), ``noise_std = 1.0`` (per-step signal-to-noise
    of 0.05 to 0.5, so the noise is a real part of the integral target: about 18 % of its
    variance at the last step), ``dt = 0.1`` (target std ≈ 1.6 at ``t = T-1``). Train and
    test are the same distribution. The paper fixes only the sizes (four inputs, length
    48); the target is not stated there.

    Parameters
    ----------
    inputs : int
        Must be 4 (two evidence streams and a two-channel one-hot context).
    length : int, >= 1
        Trial length ``T``.
    coherences : sequence of float, each >= 0, not empty
        Drift magnitudes ``c``.
    noise_std : float, >= 0
        Standard deviation of the per-step evidence noise.
    dt : float, > 0
        Integration step of the target.
    target : {"integral", "drift"}
        What is integrated (see above).
    """

    inputs: int = 4
    length: int = 48
    coherences: tuple[float, ...] = (0.05, 0.15, 0.5)
    noise_std: float = 1.0
    dt: float = 0.1
    target: str = "integral"
    name: ClassVar[str] = "cdi"

    def __post_init__(self) -> None:
        inputs = check_int("inputs", self.inputs, 0)
        if inputs != 4:
            msg = (
                "inputs must be 4 (two evidence streams + a two-channel one-hot "
                f"context); got {inputs}"
            )
            raise ValueError(msg)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "length", check_int("length", self.length, 1))
        coh = self.coherences
        if isinstance(coh, (str, bytes)) or not hasattr(coh, "__iter__"):
            msg = f"coherences must be a sequence of numbers; got {type(coh).__name__}"
            raise TypeError(msg)
        coh = tuple(check_real("coherences[i]", c, low=0.0) for c in coh)
        if not coh:
            msg = "coherences must not be empty"
            raise ValueError(msg)
        object.__setattr__(self, "coherences", coh)
        object.__setattr__(
            self, "noise_std", check_real("noise_std", self.noise_std, low=0.0)
        )
        object.__setattr__(
            self, "dt", check_real("dt", self.dt, low=0.0, low_open=True)
        )
        check_choice("target", self.target, _CDI_TARGETS)

    @property
    def n_inputs(self) -> int:
        return 4

    @property
    def n_outputs(self) -> int:
        return 1

    def _sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        split: str,  # noqa: ARG002
        dtype: np.dtype[Any],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coh = np.asarray(self.coherences)
        mu = coh[rng.integers(0, coh.size, size=(batch_size, 2))]
        mu *= np.where(rng.random((batch_size, 2)) < 0.5, -1.0, 1.0)
        ctx = rng.integers(0, 2, size=batch_size)
        noise = rng.standard_normal((self.length, batch_size, 2))
        u = mu[None, :, :] + self.noise_std * noise
        x = np.zeros((self.length, batch_size, 4), dtype=dtype)
        x[:, :, :2] = u
        x[:, np.arange(batch_size), 2 + ctx] = 1.0
        if self.target == "integral":
            cued = u[:, np.arange(batch_size), ctx]
        else:
            cued = np.broadcast_to(mu[np.arange(batch_size), ctx], u.shape[:2])
        y = (self.dt * np.cumsum(cued, axis=0))[:, :, None].astype(dtype)
        mask = np.ones((1, 1, 1), dtype=bool)
        return x, y, mask


TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (CopyTask, FlipFlop, SineGeneration, ContextIntegration)
}


def make_task(name: str, **params: Any) -> Task:
    """Build a task from its short name (``"copy"``, ``"flipflop"``, ``"sine"``,
    ``"cdi"``) and keyword parameters (defaults: the paper's sizes)."""
    if not isinstance(name, str):
        msg = f"task name must be a string; got {type(name).__name__}"
        raise TypeError(msg)
    if name not in TASKS:
        msg = f"unknown task {name!r}; expected one of {sorted(TASKS)}"
        raise ValueError(msg)
    cls = TASKS[name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(params) - known
    if unknown:
        msg = f"unknown parameters for task {name!r}: {sorted(unknown)}"
        raise ValueError(msg)
    if "coherences" in params and isinstance(params["coherences"], list):
        params = {**params, "coherences": tuple(params["coherences"])}
    return cls(**params)


def task_from_dict(d: dict[str, Any]) -> Task:
    """Inverse of ``Task.to_dict``: ``task_from_dict(t.to_dict()) == t``."""
    if not isinstance(d, dict) or "name" not in d:
        msg = "task description must be a dict with a 'name' entry"
        raise ValueError(msg)
    params = dict(d)
    return make_task(params.pop("name"), **params)
