// Work splitting and SIMD dispatch for the RNN kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "rnn_kernels.hpp"

namespace rnnschur {
namespace {

template <class T>
void forward_shard(const ForwardArgs<T>& a, std::int64_t k, std::int64_t b0,
                   std::int64_t b1, std::vector<T>& hbuf) {
    const auto& d = a.d;
    const std::int64_t Nh = d.Nh, Nx = d.Nx, Ny = d.Ny, B = d.B;
    const T* Whh = a.W_hh + k * Nh * Nh;
    hbuf.assign(static_cast<std::size_t>(2 * Nh), T(0));
    for (std::int64_t b = b0; b < b1; ++b) {
        T* prev = hbuf.data();
        T* cur = hbuf.data() + Nh;
        if (a.h0)
            std::memcpy(prev, a.h0 + b * a.h0_bstride, sizeof(T) * Nh);
        else
            std::fill(prev, prev + Nh, T(0));
        for (std::int64_t t = 0; t < d.T; ++t) {
            const T* xt = a.x + (t * B + b) * Nx;
            for (std::int64_t j = 0; j < Nh; ++j) {
                T s = a.b_h ? a.b_h[j] : T(0);
                for (std::int64_t m = 0; m < Nx; ++m) s += a.W_xh[j * Nx + m] * xt[m];
                for (std::int64_t m = 0; m < Nh; ++m) s += Whh[j * Nh + m] * prev[m];
                cur[j] = std::tanh(s);
            }
            T* yt = a.y + ((k * d.T + t) * B + b) * Ny;
            for (std::int64_t o = 0; o < Ny; ++o) {
                T s = a.b_y ? a.b_y[o] : T(0);
                for (std::int64_t j = 0; j < Nh; ++j) s += a.W_hy[o * Nh + j] * cur[j];
                yt[o] = s;
            }
            if (a.hidden)
                std::memcpy(a.hidden + ((k * d.T + t) * B + b) * Nh, cur,
                            sizeof(T) * Nh);
            std::swap(prev, cur);
        }
    }
}

template <class T>
struct GradPartial {
    std::vector<T> W_xh, W_hh, W_hy, b_h, b_y;
    double loss = 0;
};

template <class T>
void grad_shard(const GradArgs<T>& a, std::int64_t b0, std::int64_t b1,
                GradPartial<T>& g) {
    const auto& d = a.d;
    const std::int64_t Nh = d.Nh, Nx = d.Nx, Ny = d.Ny, B = d.B, TT = d.T;
    g.W_xh.assign(Nh * Nx, T(0));
    g.W_hh.assign(Nh * Nh, T(0));
    g.W_hy.assign(Ny * Nh, T(0));
    g.b_h.assign(Nh, T(0));
    g.b_y.assign(Ny, T(0));
    g.loss = 0;
    std::vector<T> H((TT + 1) * Nh), dy(Ny), dh(Nh), da(Nh), danext(Nh);
    const T scale = T(2) / static_cast<T>(a.count);
    for (std::int64_t b = b0; b < b1; ++b) {
        std::fill(H.begin(), H.begin() + Nh, T(0));
        for (std::int64_t t = 0; t < TT; ++t) {
            const T* xt = a.x + (t * B + b) * Nx;
            const T* prev = H.data() + t * Nh;
            T* cur = H.data() + (t + 1) * Nh;
            for (std::int64_t j = 0; j < Nh; ++j) {
                T s = a.b_h ? a.b_h[j] : T(0);
                for (std::int64_t m = 0; m < Nx; ++m) s += a.W_xh[j * Nx + m] * xt[m];
                for (std::int64_t m = 0; m < Nh; ++m) s += a.W_hh[j * Nh + m] * prev[m];
                cur[j] = std::tanh(s);
            }
        }
        std::fill(danext.begin(), danext.end(), T(0));
        for (std::int64_t t = TT - 1; t >= 0; --t) {
            const T* cur = H.data() + (t + 1) * Nh;
            const T* prev = H.data() + t * Nh;
            const std::int64_t off = (t * B + b) * Ny;
            for (std::int64_t o = 0; o < Ny; ++o) {
                T s = a.b_y ? a.b_y[o] : T(0);
                for (std::int64_t j = 0; j < Nh; ++j) s += a.W_hy[o * Nh + j] * cur[j];
                const bool on = a.mask == nullptr || a.mask[off + o] != 0;
                const T r = s - a.target[off + o];
                if (on) g.loss += static_cast<double>(r) * static_cast<double>(r);
                dy[o] = on ? scale * r : T(0);
                g.b_y[o] += dy[o];
                for (std::int64_t j = 0; j < Nh; ++j) g.W_hy[o * Nh + j] += dy[o] * cur[j];
            }
            for (std::int64_t j = 0; j < Nh; ++j) {
                T s = 0;
                for (std::int64_t o = 0; o < Ny; ++o) s += dy[o] * a.W_hy[o * Nh + j];
                for (std::int64_t m = 0; m < Nh; ++m) s += danext[m] * a.W_hh[m * Nh + j];
                da[j] = s * (T(1) - cur[j] * cur[j]);
            }
            const T* xt = a.x + (t * B + b) * Nx;
            for (std::int64_t j = 0; j < Nh; ++j) {
                g.b_h[j] += da[j];
                for (std::int64_t m = 0; m < Nx; ++m) g.W_xh[j * Nx + m] += da[j] * xt[m];
                for (std::int64_t m = 0; m < Nh; ++m) g.W_hh[j * Nh + m] += da[j] * prev[m];
            }
            std::swap(da, danext);
        }
    }
}

int resolve_threads(int n_threads) {
    const int hw = hardware_threads();
    return n_threads <= 0 ? hw : n_threads;
}

template <class T>
bool all_finite(const T* p, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return false;
    return true;
}

template <class T>
bool forward_impl(const ForwardArgs<T>& a, int n_threads) {
    const auto& d = a.d;
    if (d.K == 0 || d.T == 0 || d.B == 0) return true;
    // Work items: (k, batch shard). Enough items for every thread.
    const int nt = std::max(1, resolve_threads(n_threads));
    std::int64_t shards = 1;
    if (d.K < nt) shards = std::min<std::int64_t>(d.B, (nt + d.K - 1) / d.K);
    const std::int64_t items = d.K * shards;
    const int workers = static_cast<int>(std::min<std::int64_t>(nt, items));
    auto run = [&](int w) {
        std::vector<T> hbuf;
        for (std::int64_t it = w; it < items; it += workers) {
            const std::int64_t k = it / shards, s = it % shards;
            const std::int64_t b0 = d.B * s / shards, b1 = d.B * (s + 1) / shards;
            forward_shard(a, k, b0, b1, hbuf);
        }
    };
    std::vector<std::thread> pool;
    for (int w = 1; w < workers; ++w) pool.emplace_back(run, w);
    run(0);
    for (auto& th : pool) th.join();
    return all_finite(a.y, d.K * d.T * d.B * d.Ny);
}

template <class T>
bool grad_impl(GradArgs<T>& a, int n_threads) {
    const auto& d = a.d;
    const int nt = std::max(1, resolve_threads(n_threads));
    const int workers = static_cast<int>(std::min<std::int64_t>(nt, std::max<std::int64_t>(d.B, 1)));
    std::vector<GradPartial<T>> parts(workers);
    auto run = [&](int w) {
        grad_shard(a, d.B * w / workers, d.B * (w + 1) / workers, parts[w]);
    };
    std::vector<std::thread> pool;
    for (int w = 1; w < workers; ++w) pool.emplace_back(run, w);
    run(0);
    for (auto& th : pool) th.join();
    auto reduce = [&](T* out, std::vector<T> GradPartial<T>::*field) {
        const std::size_t n = (parts[0].*field).size();
        for (std::size_t i = 0; i < n; ++i) {
            T s = 0;
            for (auto& p : parts) s += (p.*field)[i];
            out[i] = s;
        }
    };
    reduce(a.g_W_xh, &GradPartial<T>::W_xh);
    reduce(a.g_W_hh, &GradPartial<T>::W_hh);
    reduce(a.g_W_hy, &GradPartial<T>::W_hy);
    if (a.g_b_h) reduce(a.g_b_h, &GradPartial<T>::b_h);
    if (a.g_b_y) reduce(a.g_b_y, &GradPartial<T>::b_y);
    double loss = 0;
    for (auto& p : parts) loss += p.loss;
    a.loss = loss / static_cast<double>(a.count);
    return std::isfinite(a.loss) && all_finite(a.g_W_xh, d.Nh * d.Nx) &&
           all_finite(a.g_W_hh, d.Nh * d.Nh) && all_finite(a.g_W_hy, d.Ny * d.Nh) &&
           (!a.g_b_h || all_finite(a.g_b_h, d.Nh)) &&
           (!a.g_b_y || all_finite(a.g_b_y, d.Ny));
}

SimdLevel g_level = SimdLevel::baseline;

}  // namespace

bool rnn_forward(const ForwardArgs<float>& a, int n) { return forward_impl(a, n); }
bool rnn_forward(const ForwardArgs<double>& a, int n) { return forward_impl(a, n); }
bool rnn_loss_and_grad(GradArgs<float>& a, int n) { return grad_impl(a, n); }
bool rnn_loss_and_grad(GradArgs<double>& a, int n) { return grad_impl(a, n); }

SimdLevel simd_level() { return g_level; }
const char* simd_level_name(SimdLevel level) {
    return level == SimdLevel::avx2 ? "avx2" : "baseline";
}
SimdLevel set_simd_level(SimdLevel level) {
    g_level = SimdLevel::baseline;
    (void)level;
    return g_level;
}
int hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace rnnschur
