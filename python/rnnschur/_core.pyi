from __future__ import annotations  # noqa: PYI044 - required by the isort config

import numpy as np
import numpy.typing as npt

eigen_version: str

# --- RNN kernels (bind_rnn.cpp). Arrays must share one float dtype and be
# C-contiguous; the public wrappers in rnnschur.rnn coerce and document them.
def rollout(
    W_xh: npt.NDArray[np.floating],
    W_hh: npt.NDArray[np.floating],
    W_hy: npt.NDArray[np.floating],
    x: npt.NDArray[np.floating],
    b_h: npt.NDArray[np.floating] | None,
    b_y: npt.NDArray[np.floating] | None,
    h0: npt.NDArray[np.floating] | None,
    return_hidden: bool,
    n_threads: int,
) -> (
    npt.NDArray[np.floating] | tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]
): ...
def loss_and_grad(
    W_xh: npt.NDArray[np.floating],
    W_hh: npt.NDArray[np.floating],
    W_hy: npt.NDArray[np.floating],
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_] | None,
    b_h: npt.NDArray[np.floating] | None,
    b_y: npt.NDArray[np.floating] | None,
    n_threads: int,
) -> tuple[float, dict[str, npt.NDArray[np.floating]]]: ...
def simd_level() -> str: ...
def set_simd_level(level: str) -> str: ...
def hardware_threads() -> int: ...
def _tanh(x: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]: ...
