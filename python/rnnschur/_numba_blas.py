"""Row-major BLAS-3 calls from Numba kernels through SciPy's ``cython_blas`` (private).

Numba's own ``@`` allocates every result and copies non-contiguous operands; the
ablation kernel instead multiplies sub-blocks of its inputs in place into per-thread
workspaces. The routines are SciPy's (its OpenBLAS), reached through the C function
pointers ``scipy.linalg.cython_blas`` exports. The addresses travel into the
kernels as integer arguments (``BlasTable``), not as globals, so the kernels stay
cacheable (``cache=True``).

Row-major ``C = op(A) op(B)`` is the column-major product ``Cᵀ = op(B)ᵀ op(A)ᵀ``:
the operands swap and the transpose flags stay.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["address", "blas_table", "gemm_rm"]

# Order of the function addresses in the table returned by ``blas_table``.
_NAMES = ("dgemm",)


@functools.cache
def blas_table() -> np.ndarray:
    """Addresses of SciPy's ``cython_blas`` routines (``_NAMES``), an intp array."""
    from scipy.linalg import cython_blas

    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    addr = []
    for name in _NAMES:
        capsule = cython_blas.__pyx_capi__[name]
        addr.append(get_pointer(capsule, get_name(capsule)))
    table = np.array(addr, dtype=np.intp)
    table.flags.writeable = False
    return table


@intrinsic
def _call_pointers(typingctx, fn, args):  # noqa: ARG001 (numba's intrinsic signature)
    """Call the C function at address ``fn`` with the addresses in tuple ``args``.

    Every BLAS argument is passed by reference, so each is one pointer.
    """
    if not isinstance(args, types.UniTuple) or args.dtype != types.intp:
        return None
    sig = types.void(types.intp, args)
    count = args.count

    def codegen(context, builder, signature, llargs):  # noqa: ARG001
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [ptr] * count)
        callee = builder.inttoptr(llargs[0], fnty.as_pointer())
        vals = [
            builder.inttoptr(builder.extract_value(llargs[1], i), ptr)
            for i in range(count)
        ]
        builder.call(callee, vals)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _array_address(typingctx, arr):  # noqa: ARG001 (numba's intrinsic signature)
    """Address of the first element of array ``arr``, as an intp."""
    if not isinstance(arr, types.Array):
        return None
    sig = types.intp(arr)

    def codegen(context, builder, signature, llargs):
        ary = context.make_array(signature.args[0])(context, builder, llargs[0])
        return builder.ptrtoint(ary.data, context.get_value_type(types.intp))

    return sig, codegen


# Called as _call(fn, (a, b, ...)) / address(arr) in compiled code; numba's stubs
# would type the calls by the Python signatures above (typingctx first).
_call: Any = _call_pointers
address: Any = _array_address

_N = ord("N")
_T = ord("T")


@njit(cache=True, nogil=True)
def _scratch():
    """Per-call argument memory: 2 chars, 6 ints, 2 doubles (BLAS takes pointers)."""
    return np.empty(2, np.uint8), np.empty(6, np.int32), np.empty(2, np.float64)


@njit(cache=True, nogil=True)
def gemm_rm(table, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Row-major ``C[m×n] = alpha op(A) op(B) + beta C`` (dgemm).

    ``ta``, ``tb``: True for a transposed operand. ``a``, ``b``, ``c``: addresses
    of the first elements (float64, row strides ``lda``, ``ldb``, ``ldc``).
    """
    ch, iv, dv = _scratch()
    ch[0] = _T if tb else _N
    ch[1] = _T if ta else _N
    iv[0] = n
    iv[1] = m
    iv[2] = k
    iv[3] = ldb
    iv[4] = lda
    iv[5] = ldc
    dv[0] = alpha
    dv[1] = beta
    pc = address(ch)
    pi = address(iv)
    pd = address(dv)
    _call(
        table[0],
        (
            pc,
            pc + 1,
            pi,
            pi + 4,
            pi + 8,
            pd,
            b,
            pi + 12,
            a,
            pi + 16,
            pd + 8,
            c,
            pi + 20,
        ),
    )
