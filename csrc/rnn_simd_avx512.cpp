// RNN kernels for x86-64-v4 (AVX-512 F/BW/DQ/VL); compiled with the matching -m
// flags and only called after a runtime CPU check (rnn_dispatch.cpp).
#define RNNSCHUR_ISA_NS isa_avx512
#define RNNSCHUR_VBYTES 64
#include "rnn_simd_impl.hpp"
