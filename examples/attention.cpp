// gmk example: attention of one head over Eigen matrices. Q, K and V are row-major
// Eigen::MatrixXf (seq x d) and go straight into gmk::flash_attention's Eigen overload
// (<gmk/attention/eigen.hpp>: any row-major matrix, Map or row block, no copy), which sizes O.
// The output and the log-sum-exp of each row are checked against the naive computation in
// double precision,
//   S = Q K^T / sqrt(d),  P = softmax of each row of S (causal: keys j <= i only),  O = P V,
// and the speed of both is printed in GFLOP/s (4 seq^2 d per call, half when causal). About a
// second on one core.
#include <gmk/attention/eigen.hpp>

#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <random>

namespace {

using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using matrix_d = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

matrix random_normal(Eigen::Index rows, Eigen::Index cols, std::mt19937& rng) {
    std::normal_distribution<float> normal;
    matrix m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
    return m;
}

// Seconds per call of f, over calls adding up to at least `budget` seconds.
template <class F>
double seconds_per_call(F&& f, double budget) {
    using clock = std::chrono::steady_clock;
    f();  // warm up
    int calls = 0;
    const auto start = clock::now();
    double elapsed = 0;
    do {
        f();
        ++calls;
        elapsed = std::chrono::duration<double>(clock::now() - start).count();
    } while (elapsed < budget);
    return elapsed / calls;
}

// Runs one case; returns whether gmk's output matched the reference.
bool run(const matrix& q, const matrix& k, const matrix& v, bool causal) {
    const auto seq = static_cast<std::size_t>(q.rows()), d = static_cast<std::size_t>(q.cols());

    // gmk: one call; lse receives log(sum_j exp(s_ij)) of each row (the softmax's normaliser).
    matrix o;
    Eigen::VectorXf lse(q.rows());
    gmk::attention_params<float> params;  // scale 0: 1/sqrt(d); serial unless GMK_USE_OPENMP
    params.causal = causal;
    const auto attend = [&] { gmk::flash_attention(q, k, v, o, lse.data(), params); };
    attend();

    // The naive computation, in double.
    const double scale = 1.0 / std::sqrt(double(d));
    matrix_d s = (q.cast<double>() * k.cast<double>().transpose()) * scale;
    Eigen::VectorXd lse_ref(q.rows());
    for (Eigen::Index i = 0; i < s.rows(); ++i) {
        const Eigen::Index visible = causal ? i + 1 : s.cols();
        auto row = s.row(i);
        const double m = row.head(visible).maxCoeff();
        row.head(visible) = (row.head(visible).array() - m).exp();
        row.tail(s.cols() - visible).setZero();
        const double sum = row.sum();
        row /= sum;
        lse_ref(i) = m + std::log(sum);
    }
    const matrix_d o_ref = s * v.cast<double>();
    const double err = (o.cast<double>() - o_ref).cwiseAbs().maxCoeff();
    const double lse_err = (lse.cast<double>() - lse_ref).cwiseAbs().maxCoeff();

    // The same naive computation in float, as one writes it with Eigen: the speed to compare with.
    matrix p(q.rows(), k.rows()), o_naive(q.rows(), q.cols());
    const auto naive = [&] {
        p.noalias() = q * k.transpose();
        for (Eigen::Index i = 0; i < p.rows(); ++i) {
            const Eigen::Index visible = causal ? i + 1 : p.cols();
            auto row = p.row(i).head(visible);
            row = ((row.array() - row.maxCoeff()) * float(scale)).exp();
            row /= row.sum();
            p.row(i).tail(p.cols() - visible).setZero();
        }
        o_naive.noalias() = p * v;
    };

    const double flops = 4.0 * double(seq) * double(seq) * double(d) * (causal ? 0.5 : 1.0);
    const double t_gmk = seconds_per_call(attend, 0.25), t_naive = seconds_per_call(naive, 0.15);
    const bool ok = err < 1e-4 && lse_err < 1e-4;
    std::printf("%-10s seq %zu, d %zu: max |O - O_ref| %.2e, max |lse - lse_ref| %.2e %s\n",
                causal ? "causal" : "full", seq, d, err, lse_err, ok ? "(ok)" : "(TOO LARGE)");
    std::printf("           gmk::flash_attention %7.1f GFLOP/s (%.2f ms), naive Eigen %7.1f GFLOP/s (%.2f ms): %.2fx\n",
                flops / t_gmk * 1e-9, t_gmk * 1e3, flops / t_naive * 1e-9, t_naive * 1e3, t_naive / t_gmk);
    return ok;
}

}  // namespace

int main() {
    const Eigen::Index seq = 2048, d = 64;
    std::mt19937 rng(42);
    const matrix q = random_normal(seq, d, rng), k = random_normal(seq, d, rng), v = random_normal(seq, d, rng);
    std::printf("attention of one head, Q K V: %ld x %ld row-major Eigen::MatrixXf\n", long(seq), long(d));
    const bool full = run(q, k, v, false);
    const bool causal = run(q, k, v, true);
    return full && causal ? 0 : 1;
}
