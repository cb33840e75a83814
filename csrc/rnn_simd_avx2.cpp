// RNN kernels for x86-64-v3 (AVX2 + FMA); compiled with -mavx2 -mfma -mf16c
// -mbmi2 and only called after a runtime CPU check (rnn_dispatch.cpp).
#define RNNSCHUR_ISA_NS isa_avx2
#define RNNSCHUR_VBYTES 32
#include "rnn_simd_impl.hpp"
