"""A streaming linear combination for Numba kernels, with non-temporal stores (private).

The batched ablation writes far more than it reads (8 subsets × n² per model from
4 cached n² arrays), and its output is not read again by the kernel. Ordinary
stores first read every destination cache line; non-temporal stores do not, so
the write costs about half the memory traffic. Numba cannot express them, so
``combine_stream`` is an intrinsic that emits the loop in LLVM IR: 8 lanes per
step with ``!nontemporal`` stores on the aligned middle, the same arithmetic one
element at a time on the unaligned head and tail, and a fence at the end (streaming
stores are weakly ordered; the fence makes them visible before the kernel returns).
Every element is ``fma(-a2, c2, fma(-a1, c1, fma(-a0, c0, x)))``, whatever the
alignment, so results do not depend on where the destination lies.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["combine_stream"]

_LANES = 8


def _fma(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
    vec = a.type  # llvmlite's declare_intrinsic does not name vector overloads
    name = f"llvm.fma.v{vec.count}f64"
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vec, [vec] * 3), name
    )
    return builder.call(fn, [a, b, c])


def _splat(builder: ir.IRBuilder, value: ir.Value, width: int) -> ir.Value:
    if width == 1:
        return builder.insert_element(
            ir.Constant(ir.VectorType(value.type, 1), None),
            value,
            ir.Constant(ir.IntType(32), 0),
        )
    vec = ir.VectorType(value.type, width)
    one = builder.insert_element(
        ir.Constant(vec, None), value, ir.Constant(ir.IntType(32), 0)
    )
    return builder.shuffle_vector(
        one,
        ir.Constant(vec, None),
        ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width),
    )


def _emit_loop(builder, ptrs, neg, start, stop, width, out_type, nontemporal):
    """``dst[i] = fma(neg2, c2, fma(neg1, c1, fma(neg0, c0, x)))`` for i in [start, stop)."""
    idx_t = start.type
    f64 = ir.DoubleType()
    vec = ir.VectorType(f64, width)
    vout = ir.VectorType(out_type, width)
    coef = [_splat(builder, a, width) for a in neg]
    pre = builder.block
    body = builder.append_basic_block("combine.body")
    done = builder.append_basic_block("combine.done")
    builder.cbranch(builder.icmp_signed("<", start, stop), body, done)
    builder.position_at_end(body)
    i = builder.phi(idx_t)
    i.add_incoming(start, pre)

    def load(p: ir.Value) -> ir.Value:
        return builder.load(
            builder.bitcast(builder.gep(p, [i]), vec.as_pointer()), align=8
        )

    dst, x, c = ptrs[0], ptrs[1], ptrs[2:]
    r = load(x)
    for k in range(3):
        r = _fma(builder, coef[k], load(c[k]), r)
    if out_type != f64:
        r = builder.fptrunc(r, vout)
    size = 8 if out_type == f64 else 4
    st = builder.store(
        r,
        builder.bitcast(builder.gep(dst, [i]), vout.as_pointer()),
        align=size * width if nontemporal else size,
    )
    if nontemporal:
        st.set_metadata(
            "nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        )
    nxt = builder.add(i, ir.Constant(idx_t, width))
    i.add_incoming(nxt, body)
    builder.cbranch(builder.icmp_signed("<", nxt, stop), body, done)
    builder.position_at_end(done)


@intrinsic
def _combine_stream(typingctx, dst, x, c0, c1, c2, a0, a1, a2):  # noqa: ARG001
    """``dst = x − a0 c0 − a1 c1 − a2 c2`` elementwise (1-D contiguous arrays)."""
    arrays = (dst, x, c0, c1, c2)
    if not all(isinstance(a, types.Array) and a.ndim == 1 for a in arrays):
        return None
    if any(a.dtype != types.float64 for a in arrays[1:]):
        return None
    if dst.dtype not in (types.float64, types.float32):
        return None
    sig = types.void(dst, x, c0, c1, c2, types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        arys = [
            context.make_array(t)(context, builder, v)
            for t, v in zip(signature.args[:5], args[:5], strict=True)
        ]
        ptrs = [a.data for a in arys]
        neg = [builder.fneg(v) for v in args[5:]]
        out_type = context.get_data_type(signature.args[0].dtype)
        size = 8 if signature.args[0].dtype == types.float64 else 4
        n = builder.extract_value(arys[0].shape, 0)
        idx_t = n.type
        # Head: elements up to the first address aligned to one full vector.
        addr = builder.ptrtoint(ptrs[0], idx_t)
        align = size * _LANES
        mis = builder.and_(
            builder.sub(ir.Constant(idx_t, 0), addr), ir.Constant(idx_t, align - 1)
        )
        head = builder.udiv(mis, ir.Constant(idx_t, size))
        head = builder.select(builder.icmp_signed("<", head, n), head, n)
        # A destination not aligned to its element size (a strided byte view)
        # cannot be aligned to a vector: all of it goes through the scalar loop.
        odd = builder.and_(addr, ir.Constant(idx_t, size - 1))
        head = builder.select(
            builder.icmp_signed("==", odd, zero := ir.Constant(idx_t, 0)), head, n
        )
        body_len = builder.and_(builder.sub(n, head), ir.Constant(idx_t, -_LANES))
        mid = builder.add(head, body_len)
        _emit_loop(builder, ptrs, neg, zero, head, 1, out_type, nontemporal=False)
        _emit_loop(builder, ptrs, neg, head, mid, _LANES, out_type, nontemporal=True)
        _emit_loop(builder, ptrs, neg, mid, n, 1, out_type, nontemporal=False)
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


# Called as combine_stream(dst, x, c0, c1, c2, a0, a1, a2) in compiled code; numba's
# stubs would type the call by the Python signature above (typingctx first).
combine_stream: Any = _combine_stream
