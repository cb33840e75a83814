// Work splitting, threads and SIMD dispatch for the RNN kernels.
//
// One call = pack the weights once, then run independent work items (a
// forward's (W_hh variant, batch shard) pairs, a gradient's batch shards), each
// start to finish, on a persistent pool, synchronising once at the end.
// Per-item workspaces are thread-local and reused across calls, so nothing is
// allocated per time step (nor, in steady state, per call).
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

#include "rnn_simd.hpp"

namespace rnnschur {
namespace {

// ---------------------------------------------------------------------------
// SIMD level

// GCC's and Clang's __builtin_cpu_supports report AVX/AVX-512 features only when
// the OS also saves the wider registers (XCR0), so a "supported" level is usable.
bool cpu_supports(SimdLevel level) {
    switch (level) {
        case SimdLevel::baseline:
            return true;
        case SimdLevel::avx2:
#if defined(RNNSCHUR_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__))
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
            return false;
#endif
        case SimdLevel::avx512:
#if defined(RNNSCHUR_HAVE_AVX512) && (defined(__GNUC__) || defined(__clang__))
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512vl");
#else
            return false;
#endif
    }
    return false;
}

SimdLevel best_level() {
    for (int l = static_cast<int>(SimdLevel::avx512); l > 0; --l)
        if (cpu_supports(static_cast<SimdLevel>(l))) return static_cast<SimdLevel>(l);
    return SimdLevel::baseline;
}

std::string g_env_error;  // set once by initial_level(), before any reader

SimdLevel initial_level() {
    const char* env = std::getenv("RNNSCHUR_SIMD");
    if (env == nullptr || *env == '\0') return best_level();
    SimdLevel want;
    if (!parse_simd_level(env, want)) {
        g_env_error = std::string("RNNSCHUR_SIMD='") + env +
                      "' is not a SIMD level: use 'baseline', 'avx2' or 'avx512'";
    } else if (!cpu_supports(want)) {
        g_env_error = std::string("RNNSCHUR_SIMD='") + env +
                      "' but this CPU (or this build) does not support it; "
                      "the best level here is '" +
                      simd_level_name(best_level()) + "'";
    } else {
        return want;
    }
    return best_level();
}

std::atomic<int> g_level{static_cast<int>(initial_level())};

template <class T>
const KernelSet<T>& kernels_for(SimdLevel level);
template <>
const KernelSet<float>& kernels_for<float>(SimdLevel level) {
#if defined(RNNSCHUR_HAVE_AVX512)
    if (level == SimdLevel::avx512) return isa_avx512::kernels_f32;
#endif
#if defined(RNNSCHUR_HAVE_AVX2)
    if (level == SimdLevel::avx2) return isa_avx2::kernels_f32;
#endif
    (void)level;
    return isa_baseline::kernels_f32;
}
template <>
const KernelSet<double>& kernels_for<double>(SimdLevel level) {
#if defined(RNNSCHUR_HAVE_AVX512)
    if (level == SimdLevel::avx512) return isa_avx512::kernels_f64;
#endif
#if defined(RNNSCHUR_HAVE_AVX2)
    if (level == SimdLevel::avx2) return isa_avx2::kernels_f64;
#endif
    (void)level;
    return isa_baseline::kernels_f64;
}

// ---------------------------------------------------------------------------
// Persistent thread pool. One parallel call at a time; a call that finds the
// pool busy (another Python thread is using it) runs its parts serially on its
// own thread instead of waiting. Parts are claimed dynamically by whoever is
// free, the caller included, so a helper that the OS has descheduled (these
// cores are shared) delays the call by at most the part it is running, never
// by its wake-up. Workers spin briefly after a job before sleeping, so
// back-to-back calls (a training loop) avoid the costly wake-up.

class Pool {
   public:
    explicit Pool(int n_workers) : n_(n_workers) {
        for (int w = 1; w <= n_; ++w) threads_.emplace_back([this] { loop(); });
    }
    int size() const { return n_ + 1; }
    std::mutex& call_mutex() { return call_mu_; }

    // Runs fn(0..parts-1); the caller holds call_mutex(). parts < 2^31.
    void run(int parts, const std::function<void(int)>& fn) {
        const std::uint64_t gen = (claim_.load() >> 32) + 1;
        job_.store(&fn, std::memory_order_relaxed);
        parts_.store(parts, std::memory_order_relaxed);
        pending_.store(parts, std::memory_order_relaxed);
        // The claim word carries the job's generation, so a late helper can
        // never claim a part of a job other than the one it read.
        claim_.store(gen << 32, std::memory_order_release);
        {
            std::lock_guard<std::mutex> lk(mu_);
            ticket_.store(gen, std::memory_order_release);
        }
        cv_.notify_all();
        work(gen);
        for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
            if (spin > 2000) {  // a helper was descheduled mid-part: sleep
                std::unique_lock<std::mutex> lk(done_mu_);
                done_cv_.wait(lk, [this] { return pending_.load() == 0; });
                break;
            }
            cpu_relax();
        }
    }

   private:
    static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#else
        std::this_thread::yield();
#endif
    }

    // Claims and runs parts of job `gen` until none is left.
    void work(std::uint64_t gen) {
        for (;;) {
            std::uint64_t c = claim_.load(std::memory_order_acquire);
            if ((c >> 32) != gen) return;
            const int idx = static_cast<int>(c & 0xffffffffu);
            if (idx >= parts_.load(std::memory_order_relaxed)) return;
            if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel))
                continue;
            (*job_.load(std::memory_order_relaxed))(idx);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard<std::mutex> lk(done_mu_);
                done_cv_.notify_one();
            }
        }
    }

    void loop() {
        std::uint64_t seen = 0;  // the initial ticket: never miss the first job
        for (;;) {
            // Spin ~0.2 ms for the next job, then sleep.
            std::uint64_t t = ticket_.load(std::memory_order_acquire);
            for (int spin = 0; t == seen && spin < 4000; ++spin) {
                cpu_relax();
                t = ticket_.load(std::memory_order_acquire);
            }
            if (t == seen) {
                std::unique_lock<std::mutex> lk(mu_);
                cv_.wait(lk, [&] { return ticket_.load() != seen; });
                t = ticket_.load(std::memory_order_acquire);
            }
            seen = t;
            work(t);
        }
    }

    int n_;
    std::vector<std::thread> threads_;
    std::mutex call_mu_, mu_, done_mu_;
    std::condition_variable cv_, done_cv_;
    std::atomic<std::uint64_t> ticket_{0}, claim_{0};
    std::atomic<int> pending_{0}, parts_{0};
    std::atomic<const std::function<void(int)>*> job_{nullptr};
};

std::mutex g_pool_mu;
Pool* g_pool = nullptr;  // leaked on purpose: joining threads at exit can deadlock

#if defined(__unix__) || defined(__APPLE__)
// A forked child has no pool threads: forget the parent's pool (leaking it).
void forget_pool_in_child() {
    new (&g_pool_mu) std::mutex();
    g_pool = nullptr;
}
#endif

Pool* get_pool() {
    std::lock_guard<std::mutex> lk(g_pool_mu);
    if (!g_pool) {
#if defined(__unix__) || defined(__APPLE__)
        static bool registered = [] {
            pthread_atfork(nullptr, nullptr, forget_pool_in_child);
            return true;
        }();
        (void)registered;
#endif
        const int hw = hardware_threads();
        g_pool = new Pool(hw > 1 ? hw - 1 : 0);
    }
    return g_pool;
}

// Runs fn(0..parts-1), in parallel when parts > 1 and the pool is free.
void parallel_for(int parts, const std::function<void(int)>& fn) {
    if (parts <= 1) {
        if (parts == 1) fn(0);
        return;
    }
    Pool* pool = get_pool();
    std::unique_lock<std::mutex> lk(pool->call_mutex(), std::try_to_lock);
    if (!lk.owns_lock() || pool->size() == 1) {
        for (int p = 0; p < parts; ++p) fn(p);
        return;
    }
    // An exception (std::bad_alloc from a workspace) must not escape a worker
    // thread (std::terminate): keep the first one and rethrow it here.
    std::exception_ptr error;
    std::mutex error_mu;
    const std::function<void(int)> guarded = [&](int p) {
        try {
            fn(p);
        } catch (...) {
            std::lock_guard<std::mutex> g(error_mu);
            if (!error) error = std::current_exception();
        }
    };
    pool->run(parts, guarded);
    if (error) std::rethrow_exception(error);
}

// Thread-local, 64-byte aligned scratch that only grows.
template <class T>
T* scratch(int slot, i64 n) {
    thread_local std::vector<unsigned char> bufs[3];
    auto& b = bufs[slot];
    const std::size_t need = static_cast<std::size_t>(n) * sizeof(T) + 64;
    if (b.size() < need) b.assign(need, 0);
    auto p = reinterpret_cast<std::uintptr_t>(b.data());
    return reinterpret_cast<T*>((p + 63) & ~std::uintptr_t(63));
}

// Below this many flops per call one thread is faster than waking a second one.
constexpr double kMinParallelFlops = 1.5e6;

// Threads for a call of `flops` (1 below the parallel threshold).
int threads_for(int n_threads, double flops) {
    int nt = n_threads <= 0 ? hardware_threads() : n_threads;
    if (nt > 4096) nt = 4096;
    return flops < kMinParallelFlops ? 1 : nt;
}

// Number of parts for up to items_max independent items: one per thread,
// times two when each part still gets >= 8 batch rows (dynamic balancing on
// shared cores), one for small calls.
int choose_parts(int n_threads, i64 items_max, double flops, i64 rows) {
    const int nt = threads_for(n_threads, flops);
    i64 parts = nt;
    if (nt > 1 && rows >= 16 * nt) parts = 2 * nt;
    if (parts > items_max) parts = items_max;
    return static_cast<int>(parts < 1 ? 1 : parts);
}

// Runs fn(0..items-1) on at most nt threads: nt pool parts that claim items
// from a shared counter. The item -> data mapping does not depend on which
// thread runs it, so results do not either; the cap keeps n_threads a limit
// on machines whose pool is larger than nt.
void parallel_items(int nt, i64 items, const std::function<void(i64)>& fn) {
    const i64 parts = nt < items ? nt : items;
    if (parts <= 1) {
        for (i64 it = 0; it < items; ++it) fn(it);
        return;
    }
    std::atomic<i64> next{0};
    parallel_for(static_cast<int>(parts), [&](int) {
        for (i64 it = next.fetch_add(1); it < items; it = next.fetch_add(1)) fn(it);
    });
}

// Forward work items are (variant, batch shard) pairs, claimed one at a time
// by whichever thread is free. Aim for kItemsPerThread of them per thread, so
// a thread that the OS deschedules on these shared cores (or one that runs
// slower) delays the call by at most one small item, not by a fixed 1/nt of
// it; shards keep >= kMinShardRows rows (per-row cost measured flat from 64
// down to 16 rows at Nh = 72). Rows are independent, so neither the shard
// boundaries nor the order of items change any result bit.
constexpr i64 kItemsPerThread = 8, kMinShardRows = 16;

i64 forward_shards(i64 K, i64 B, int nt) {
    if (nt <= 1) return 1;
    const i64 want = kItemsPerThread * nt;
    i64 shards = (want + K - 1) / K;
    i64 cap = B / kMinShardRows;
    if (cap < nt) cap = nt;  // small batches still use every thread
    if (shards > cap) shards = cap;
    if (shards > B) shards = B;
    return shards < 1 ? 1 : shards;
}

// Where the level has the transposed forward (batch in the lanes), it runs
// when its shards fill their vectors (ForwardLayout::automatic, see
// tposed_pays), or always / never (tests and benchmarks compare the layouts).
std::atomic<int> g_layout{static_cast<int>(ForwardLayout::automatic)};

// Shards of the transposed forward: its register tile spans 4 vectors of batch
// columns, so shards stay wide (up to kTposedMaxVecs vectors, a state block
// that fits L1/L2) and split further only when there are fewer variants than
// threads (narrower shards run narrower, slower tiles).
constexpr i64 kTposedMaxVecs = 16;
i64 tposed_shards(i64 K, i64 B, int nt, i64 lanes) {
    const i64 max_rows = kTposedMaxVecs * lanes, per_thread = (nt + K - 1) / K;
    i64 shards = (B + max_rows - 1) / max_rows;
    if (nt > 1 && shards < per_thread) shards = per_thread < B ? per_thread : B;
    return shards < 1 ? 1 : shards;
}

// The transposed forward computes whole vectors of batch columns: it pays
// where its one-thread shards leave at most 1/8 of the lanes as padding.
// Measured against the row layout at Nh = 72, float32, one thread: 64 rows
// 1.24x, 56 (7/8 used) 1.14x, 32 1.18x, 28 (7/8) 1.07x, 16 1.09x, 14 (7/8)
// 1.01x; 24 (3/4) 0.91x, 17 (17/32) 0.56x, 8 0.44x. The choice depends on B
// only, never on the thread count, so that results do not either.
bool tposed_pays(i64 B, i64 lanes) {
    const i64 shards = tposed_shards(1, B, 1, lanes);
    return 8 * B >= 7 * shards * round_up((B + shards - 1) / shards, lanes);
}

// Every finite check of item (k, rows [b0, b1)) while its outputs are warm (a
// serial pass over all of y after the parallel part would cost ~5% of a K = 8
// call).
template <class T>
bool item_finite(const ForwardArgs<T>& a, i64 k, i64 b0, i64 b1) {
    const RnnDims& d = a.d;
    const T* yk = a.y + k * d.T * d.B * d.Ny;
    bool ok = true;
    for (i64 t = 0; t < d.T && ok; ++t)
        ok = all_finite(yk + (t * d.B + b0) * d.Ny, (b1 - b0) * d.Ny);
    return ok;
}

template <class T>
bool forward_tposed(const KernelSet<T>& ks, const ForwardArgs<T>& a, int nt) {
    const RnnDims& d = a.d;
    const i64 shards = tposed_shards(d.K, d.B, nt, ks.lanes);
    const i64 bs_max = (d.B + shards - 1) / shards;
    const TposedLayout L = make_tposed_layout(d, ks.lanes, bs_max);
    T* packed = scratch<T>(0, L.packed_size);
    parallel_items(nt, L.pack_parts,
                   [&](i64 part) { ks.pack_forward_t(a, L, packed, part); });
    std::atomic<bool> finite{true};
    parallel_items(nt, d.K * shards, [&](i64 it) {
        const i64 k = it / shards, s = it % shards;
        const i64 b0 = d.B * s / shards, b1 = d.B * (s + 1) / shards;
        ks.forward_item_t(a, L, packed, k, b0, b1, scratch<T>(1, L.ws_size));
        if (!item_finite(a, k, b0, b1)) finite.store(false, std::memory_order_relaxed);
    });
    return finite.load();
}

template <class T>
bool forward_impl(const ForwardArgs<T>& a, int n_threads) {
    const RnnDims& d = a.d;
    if (d.K == 0 || d.T == 0 || d.B == 0) return true;
    const KernelSet<T>& ks = kernels_for<T>(simd_level());
    const double flops =
        2.0 * d.K * d.T * d.B * (double(d.Nh) * d.Nh + double(d.Nh) * (d.Nx + d.Ny));
    const int nt = threads_for(n_threads, flops);
    if (ks.forward_item_t && d.Nh > 0) {
        const auto layout = static_cast<ForwardLayout>(g_layout.load());
        if (layout == ForwardLayout::transposed ||
            (layout == ForwardLayout::automatic && tposed_pays(d.B, ks.lanes)))
            return forward_tposed(ks, a, nt);
    }
    const i64 shards = forward_shards(d.K, d.B, nt);
    const i64 items = d.K * shards;
    const i64 bs_max = (d.B + shards - 1) / shards;
    const RnnLayout L = make_layout(d, ks.nr, bs_max, false, a.leak != T(1));
    T* packed = scratch<T>(0, L.packed_size);
    ks.pack_forward(a, L, packed);
    std::atomic<bool> finite{true};
    auto item = [&](i64 it) {
        const i64 k = it / shards, s = it % shards;
        const i64 b0 = d.B * s / shards, b1 = d.B * (s + 1) / shards;
        ks.forward_item(a, L, packed, k, b0, b1, scratch<T>(1, L.ws_size));
        if (!item_finite(a, k, b0, b1)) finite.store(false, std::memory_order_relaxed);
    };
    parallel_items(nt, items, item);
    return finite.load();
}

template <class T>
bool grad_impl(GradArgs<T>& a, int n_threads) {
    const RnnDims& d = a.d;
    const KernelSet<T>& ks = kernels_for<T>(simd_level());
    const double flops =
        6.0 * d.T * d.B * (double(d.Nh) * d.Nh + double(d.Nh) * (d.Nx + d.Ny));
    const int nt = threads_for(n_threads, flops);
    const int parts = choose_parts(n_threads, d.B, flops, d.B);
    const i64 bs_max = (d.B + parts - 1) / parts;
    const RnnLayout L = make_layout(d, ks.nr, bs_max, true, a.leak != T(1));
    T* packed = scratch<T>(0, L.packed_size);
    ks.pack_grad(a, L, packed);
    // Gradient partial sums of every part live side by side in the caller's
    // scratch until the reduction below.
    const i64 gstride = align_elems(L.g_size);
    T* gall = scratch<T>(2, gstride * parts);
    std::vector<double> sse(static_cast<std::size_t>(parts), 0.0);
    parallel_items(nt, parts, [&](i64 p) {
        sse[static_cast<std::size_t>(p)] =
            ks.grad_item(a, L, packed, d.B * p / parts, d.B * (p + 1) / parts,
                         scratch<T>(1, L.ws_size), gall + gstride * p);
    });
    auto reduce = [&](T* out, i64 off, i64 n) {
        if (!out) return;
        std::memcpy(out, gall + off, sizeof(T) * static_cast<std::size_t>(n));
        for (int p = 1; p < parts; ++p) {
            const T* src = gall + gstride * p + off;
            for (i64 i = 0; i < n; ++i) out[i] += src[i];
        }
    };
    reduce(a.g_W_hh, L.off_gWhh, d.Nh * d.Nh);
    reduce(a.g_W_xh, L.off_gWxh, d.Nh * d.Nx);
    reduce(a.g_W_hy, L.off_gWhy, d.Ny * d.Nh);
    reduce(a.g_b_h, L.off_gbh, d.Nh);
    reduce(a.g_b_y, L.off_gby, d.Ny);
    double total = 0;
    for (double s : sse) total += s;
    a.loss = total / static_cast<double>(a.count);
    return std::isfinite(a.loss) && all_finite(a.g_W_xh, d.Nh * d.Nx) &&
           all_finite(a.g_W_hh, d.Nh * d.Nh) && all_finite(a.g_W_hy, d.Ny * d.Nh) &&
           (!a.g_b_h || all_finite(a.g_b_h, d.Nh)) &&
           (!a.g_b_y || all_finite(a.g_b_y, d.Ny));
}

}  // namespace

bool rnn_forward(const ForwardArgs<float>& a, int n) {
    return forward_impl(a, n);
}
bool rnn_forward(const ForwardArgs<double>& a, int n) {
    return forward_impl(a, n);
}
bool rnn_loss_and_grad(GradArgs<float>& a, int n) {
    return grad_impl(a, n);
}
bool rnn_loss_and_grad(GradArgs<double>& a, int n) {
    return grad_impl(a, n);
}

ForwardLayout set_forward_layout(ForwardLayout layout) {
    return static_cast<ForwardLayout>(g_layout.exchange(static_cast<int>(layout)));
}

SimdLevel simd_level() {
    return static_cast<SimdLevel>(g_level.load());
}
const char* simd_level_name(SimdLevel level) {
    switch (level) {
        case SimdLevel::avx512:
            return "avx512";
        case SimdLevel::avx2:
            return "avx2";
        default:
            return "baseline";
    }
}
bool parse_simd_level(const char* name, SimdLevel& level) {
    for (int l = 0; l <= static_cast<int>(SimdLevel::avx512); ++l) {
        if (std::strcmp(name, simd_level_name(static_cast<SimdLevel>(l))) == 0) {
            level = static_cast<SimdLevel>(l);
            return true;
        }
    }
    return false;
}
bool simd_level_supported(SimdLevel level) {
    return cpu_supports(level);
}
const char* simd_env_error() {
    return g_env_error.empty() ? nullptr : g_env_error.c_str();
}
SimdLevel set_simd_level(SimdLevel level) {
    while (level != SimdLevel::baseline && !cpu_supports(level))
        level = static_cast<SimdLevel>(static_cast<int>(level) - 1);
    g_level.store(static_cast<int>(level));
    return level;
}
int hardware_threads() {
    // Cached: hardware_concurrency() reads /sys on every call (microseconds).
    static const int n = [] {
        const unsigned hc = std::thread::hardware_concurrency();
        return hc == 0 ? 1 : static_cast<int>(hc);
    }();
    return n;
}

void rnn_tanh(const float* x, float* y, std::int64_t n) {
    kernels_for<float>(simd_level()).tanh_array(x, y, n);
}
void rnn_tanh(const double* x, double* y, std::int64_t n) {
    kernels_for<double>(simd_level()).tanh_array(x, y, n);
}

}  // namespace rnnschur
