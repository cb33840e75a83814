// RNN kernels for the baseline ISA of the target (SSE2 on x86-64).
#define RNNSCHUR_ISA_NS isa_baseline
#define RNNSCHUR_VBYTES 16
#include "rnn_simd_impl.hpp"
