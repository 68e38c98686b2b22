// Fuzz target: the schedule and grid constructors (gmk/schedules/*.hpp, and the noise_grid
// constructors of gmk/diffusion/noise_levels.hpp) with arbitrary parameters.
//
// Each input picks one constructor and decodes its parameters: mostly in the range users pass,
// sometimes a special value (NaN, infinities, zeros, the extremes) or anything from 1e-300 to
// 1e300. Every call is checked against the function's documented preconditions: a call that
// breaks one must throw std::invalid_argument, any other must not throw, must not crash or trip
// a sanitizer, must give finite values, and must keep the documented invariants: sizes, final
// levels, monotone grids (non-increasing: rounding may tie neighbours), levels inside their
// ranges, endpoints where the formula puts them (to a relative error that allows for its
// conditioning), the float form equal to the double form rounded once, and a schedule that is a
// valid noise grid accepted by the noise_grid constructor built for it.
#include <gmk/diffusion/noise_levels.hpp>
#include <gmk/schedules/betas.hpp>
#include <gmk/schedules/flow.hpp>
#include <gmk/schedules/sigmas.hpp>
#include <gmk/schedules/timesteps.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fuzz_input.hpp"

namespace {

using gmk_fuzz::call_checked;
using gmk_fuzz::expect;
using lim = std::numeric_limits<double>;
constexpr double eps = lim::epsilon();

// ---- decoding ------------------------------------------------------------------------------

// A parameter: usually in [lo, hi], sometimes special or of any magnitude.
double param(gmk_fuzz::input& in, double lo, double hi) {
    const std::uint8_t s = in.byte();
    if (s < 12) {
        const double special[] = {lim::quiet_NaN(),  lim::infinity(), -lim::infinity(), 0.0, -0.0,       1.0, -1.0,
                                  lim::denorm_min(), lim::max(),      lim::min(),       0.5, 1 - eps / 2};
        return special[s];
    }
    if (s < 40) {
        const double m = in.log_real(1e-300, 1e300);
        return s & 1 ? -m : m;
    }
    return in.real(lo, hi);
}

// A list of n values from `value`, optionally sorted (ascending or descending) so that the
// monotone inputs the constructors want are common.
template <class F>
std::vector<double> list(gmk_fuzz::input& in, std::size_t n, F value) {
    std::vector<double> v(n);
    for (auto& x : v) x = value();
    switch (in.choice(4)) {
        case 0:
            std::sort(v.begin(), v.end());
            break;
        case 1:
            std::sort(v.begin(), v.end(), [](double a, double b) { return a > b; });
            break;
        default:
            break;
    }
    return v;
}

bool finite_all(const std::vector<double>& v) {
    for (double x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

// Non-increasing (ties allowed), or non-decreasing.
bool non_increasing(const std::vector<double>& v, std::size_t count) {
    for (std::size_t i = 1; i < count; ++i)
        if (!(v[i] <= v[i - 1])) return false;
    return true;
}
bool non_decreasing(const std::vector<double>& v) {
    for (std::size_t i = 1; i < v.size(); ++i)
        if (!(v[i] >= v[i - 1])) return false;
    return true;
}
// Non-decreasing up to `ulps` units in the last place (linspace's two halves meet to rounding).
bool nearly_non_decreasing(const std::vector<double>& v, double ulps) {
    for (std::size_t i = 1; i < v.size(); ++i)
        if (!(v[i] >= v[i - 1] - ulps * eps * std::fabs(v[i - 1]))) return false;
    return true;
}
bool close(double got, double want, double rel) { return std::fabs(got - want) <= rel * std::fabs(want); }

// The float form is the double form rounded once.
bool rounded(const std::vector<double>& d, const std::vector<float>& f) {
    if (d.size() != f.size()) return false;
    for (std::size_t i = 0; i < d.size(); ++i)
        if (!(f[i] == float(d[i]) || (std::isnan(f[i]) && std::isnan(d[i])))) return false;
    return true;
}

std::string show(const std::vector<double>& v) {
    std::ostringstream os;
    os.precision(17);
    os << "[";
    for (std::size_t i = 0; i < v.size() && i < 12; ++i) os << (i ? ", " : "") << v[i];
    if (v.size() > 12) os << ", ... (" << v.size() << ")";
    os << "]";
    return os.str();
}

// A VE sigma grid (descending, final 0 allowed) must be a valid noise grid: noise_grid::ve
// accepts it, with sigma = 0 only at the end.
void accepted_as_ve_grid(const std::vector<double>& s, const char* what) {
    if (s.size() < 2) return;
    std::string message;
    try {
        const gmk::noise_grid g = gmk::noise_grid::ve(s);
        expect(g.size() == s.size(), what, ": grid size");
    } catch (const std::invalid_argument& e) {
        expect(false, what, " gives sigmas that noise_grid::ve rejects: ", e.what(), " sigmas ", show(s));
    }
}

// ---- betas ----------------------------------------------------------------------------------

void fuzz_betas(gmk_fuzz::input& in) {
    const int kind = int(in.choice(5));  // 4 is not a schedule
    const std::size_t n = in.byte() < 8 ? 0 : in.range(1, 2000);
    const double start = param(in, 0, 0.05), end = param(in, 0, 0.1);
    const auto schedule = static_cast<gmk::beta_schedule>(kind);
    const bool range_ok = start >= 0 && start < 1 && end >= 0 && end < 1 && end >= start;
    const bool valid = n >= 1 && kind < 4 && (schedule == gmk::beta_schedule::squaredcos_cap_v2 || range_ok);
    std::vector<double> b;
    if (!call_checked(valid, "betas", [&] { b = gmk::betas(schedule, n, start, end); })) return;
    const std::string at = "betas(" + std::to_string(kind) + ", " + std::to_string(n) + ", " +
                           gmk::detail::value_text(start) + ", " + gmk::detail::value_text(end) + ")";
    expect(b.size() == n && finite_all(b), at, ": size or non-finite ", show(b));
    for (double x : b) expect(x >= 0 && x < 1, at, ": beta ", x, " outside [0, 1)");
    expect(nearly_non_decreasing(b, 4), at, ": betas decrease ", show(b));
    switch (schedule) {
        case gmk::beta_schedule::linear:
            expect(b.front() == start && (n == 1 || b.back() == end), at, ": ends ", b.front(), " ", b.back());
            break;
        case gmk::beta_schedule::scaled_linear:
            expect(close(b.front(), start, 4 * eps) && (n == 1 || close(b.back(), end, 4 * eps)), at, ": ends ",
                   b.front(), " ", b.back());
            break;
        case gmk::beta_schedule::sigmoid:
            for (double x : b)
                expect(x >= start * (1 - 4 * eps) && x <= end * (1 + 4 * eps), at, ": beta ", x,
                       " outside [start, end]");
            break;
        default:
            for (double x : b) expect(x <= 0.999, at, ": cosine beta ", x, " above the cap");
    }
    expect(rounded(b, gmk::betas<float>(schedule, n, start, end)), at, ": float form is not the double rounded");
    // And the training schedule they give.
    const std::vector<double> a = gmk::alphas_cumprod(b);
    expect(a.size() == n && a.front() == 1 - b.front() && non_increasing(a, a.size()), at, ": alphas_cumprod ",
           show(a));
}

// alphas_cumprod, rescale_zero_terminal_snr and rescaled_alphas_cumprod of arbitrary betas.
void fuzz_cumprod(gmk_fuzz::input& in) {
    const std::size_t n = in.range(0, 64);
    const std::vector<double> b = list(in, n, [&] { return param(in, 0, 0.3); });
    bool all_ok = n >= 1;
    for (double x : b) all_ok = all_ok && x >= 0 && x < 1;
    std::vector<double> a;
    if (call_checked(all_ok, "alphas_cumprod", [&] { a = gmk::alphas_cumprod(b); })) {
        expect(a.size() == n && finite_all(a) && non_increasing(a, n) && a.front() == 1 - b.front(), "alphas_cumprod ",
               show(b), " = ", show(a));
        for (double x : a) expect(x >= 0 && x <= 1, "alphas_cumprod ", show(b), " gives ", x);
        expect(rounded(a, gmk::alphas_cumprod<float>(b)), "alphas_cumprod: float form is not the double rounded");
    }
    // Zero terminal SNR: needs two betas and sqrt(abar) falling from first to last.
    const bool rescalable = all_ok && n >= 2 && std::sqrt(a.front()) > std::sqrt(a.back());
    std::vector<double> z;
    if (!call_checked(rescalable, "rescale_zero_terminal_snr", [&] { z = gmk::rescale_zero_terminal_snr(b); })) return;
    const std::string at = "rescale_zero_terminal_snr(" + show(b) + ")";
    expect(z.size() == n && finite_all(z), at, " = ", show(z), ": non-finite betas");
    for (double x : z) expect(x >= 0 && x <= 1, at, ": beta ", x, " outside [0, 1]");
    expect(z.back() == 1.0, at, ": last beta ", z.back(), ", expected 1");
    const std::vector<double> za = gmk::rescaled_alphas_cumprod(b);
    expect(za.size() == n && finite_all(za) && za.back() == gmk::zero_terminal_snr_alphas_cumprod,
           "rescaled_alphas_cumprod(", show(b), ") = ", show(za));
    for (double x : za) expect(x > 0 && x <= 1, "rescaled_alphas_cumprod(", show(b), ") gives ", x);
    expect(non_increasing(za, n), "rescaled_alphas_cumprod(", show(b), ") increases: ", show(za));
}

// ---- timesteps ------------------------------------------------------------------------------

void fuzz_timesteps(gmk_fuzz::input& in) {
    const int sp = int(in.choice(4));  // 3 is not a spacing
    const auto spacing = static_cast<gmk::timestep_spacing>(sp);
    std::size_t T;
    switch (in.choice(8)) {
        case 0:
            T = in.bits<std::uint64_t>();
            break;  // anything, 2^64 - 1 included
        case 1:
            T = std::size_t(1) << in.range(0, 63);
            break;  // powers of two
        default:
            T = in.range(0, 3000);
            break;
    }
    const std::size_t steps = in.byte() < 8 ? 0 : in.range(1, 1200);
    const std::ptrdiff_t offset = std::ptrdiff_t(in.range(0, 6)) - 2;
    const bool fractional = in.flag();
    const std::string at = std::string(fractional ? "timesteps_fractional(" : "timesteps(") + std::to_string(sp) +
                           ", " + std::to_string(T) + ", " + std::to_string(steps) + ", " + std::to_string(offset) +
                           ")";
    // The documented preconditions.
    bool valid = T >= 1 && T <= gmk::max_train_timesteps && steps >= 1 && sp < 3;
    if (valid && (!fractional || spacing != gmk::timestep_spacing::linspace)) valid = steps <= T;
    if (valid && spacing == gmk::timestep_spacing::leading) {
        const std::size_t first = (steps - 1) * (T / steps);
        valid = offset >= 0 && first + std::size_t(offset) < T;
    }
    std::vector<double> t;
    if (fractional) {
        if (!call_checked(valid, at.c_str(), [&] { t = gmk::timesteps_fractional(spacing, T, steps, offset); })) return;
    } else {
        std::vector<std::int64_t> ti;
        if (!call_checked(valid, at.c_str(), [&] { ti = gmk::timesteps(spacing, T, steps, offset); })) return;
        t.assign(ti.begin(), ti.end());
    }
    expect(t.size() == steps && finite_all(t), at, ": ", show(t));
    const double top = double(T - 1);
    for (double x : t) expect(x >= 0 && x <= top, at, ": timestep ", x, " outside [0, T - 1]");
    // Descending: strictly while the timesteps are distinct doubles (T - 1 < 2^53, and a
    // fractional linspace has distinct values only when T > 1).
    const bool exact = T <= (std::size_t(1) << 52);
    if (exact && !(fractional && spacing == gmk::timestep_spacing::linspace && T == 1))
        for (std::size_t i = 1; i < t.size(); ++i)
            expect(t[i] < t[i - 1], at, ": not descending at ", i, ": ", show(t));
    else
        expect(non_increasing(t, t.size()), at, ": increases: ", show(t));
    if (exact && spacing == gmk::timestep_spacing::linspace && steps > 1)
        expect(t.front() == top && t.back() == 0, at, ": linspace ends ", t.front(), " ", t.back());
    if (exact && spacing == gmk::timestep_spacing::trailing)
        expect(t.front() == top, at, ": trailing starts at ", t.front());
    if (exact && spacing == gmk::timestep_spacing::leading)
        expect(t.back() == double(offset), at, ": leading ends at ", t.back());
    if (!fractional || spacing != gmk::timestep_spacing::linspace)
        for (double x : t) expect(x == std::floor(x), at, ": timestep ", x, " is not an integer");
}

// ---- sigma grids ----------------------------------------------------------------------------

void fuzz_sigmas(gmk_fuzz::input& in) {
    const std::size_t which = in.choice(4);
    const std::size_t n = in.byte() < 8 ? 0 : in.range(1, 500);
    const double a = param(in, 0.001, 2), b = param(in, 1, 200), c = param(in, 0.5, 10), e = param(in, 0, 0.05);
    std::vector<double> s;
    std::vector<float> f;
    std::string at;
    const bool range_ok = n >= 1 && a > 0 && std::isfinite(a) && b > a && std::isfinite(b);
    const bool rho_ok = c > 0 && std::isfinite(c);
    switch (which) {
        case 0:
            at = "sigmas_karras";
            if (!call_checked(range_ok && rho_ok, at.c_str(), [&] { s = gmk::sigmas_karras(n, a, b, c); })) return;
            f = gmk::sigmas_karras<float>(n, a, b, c);
            break;
        case 1:
            at = "sigmas_exponential";
            if (!call_checked(range_ok, at.c_str(), [&] { s = gmk::sigmas_exponential(n, a, b); })) return;
            f = gmk::sigmas_exponential<float>(n, a, b);
            break;
        case 2:
            at = "sigmas_polyexponential";
            if (!call_checked(range_ok && rho_ok, at.c_str(), [&] { s = gmk::sigmas_polyexponential(n, a, b, c); }))
                return;
            f = gmk::sigmas_polyexponential<float>(n, a, b, c);
            break;
        default: {
            const double beta_d = param(in, 1, 40), beta_min = param(in, 0, 1);
            at = "sigmas_vp(" + std::to_string(n) + ", " + gmk::detail::value_text(beta_d) + ", " +
                 gmk::detail::value_text(beta_min) + ", " + gmk::detail::value_text(e) + ")";
            // sigma(1) = sqrt(e^x - 1), x = beta_d / 2 + beta_min, must be a finite double: e^(x / 2)
            // finite (for x > ln(DBL_MAX), where sqrt(1 - e^-x) = 1).
            const double x = beta_d / 2 + beta_min, ln_max = std::log(lim::max());
            const bool ok = n >= 1 && beta_d > 0 && std::isfinite(beta_d) && beta_min >= 0 && std::isfinite(beta_min) &&
                            e > 0 && e < 1 && (x <= ln_max || std::isfinite(std::exp(x / 2)));
            if (!call_checked(ok, at.c_str(), [&] { s = gmk::sigmas_vp(n, beta_d, beta_min, e); })) return;
            f = gmk::sigmas_vp<float>(n, beta_d, beta_min, e);
            expect(s.size() == n + 1 && s.back() == 0 && finite_all(s), at, ": ", show(s));
            expect(non_increasing(s, s.size()), at, ": increases: ", show(s));
            expect(rounded(s, f), at, ": float form is not the double rounded");
            return;
        }
    }
    at += "(" + std::to_string(n) + ", " + gmk::detail::value_text(a) + ", " + gmk::detail::value_text(b) + ", " +
          gmk::detail::value_text(c) + ")";
    expect(s.size() == n + 1 && s.back() == 0 && finite_all(s), at, ": ", show(s));
    for (std::size_t i = 0; i < n; ++i) expect(s[i] > 0, at, ": level ", i, " is ", s[i]);
    expect(non_increasing(s, s.size()), at, ": increases: ", show(s));
    // The ends are sigma_max and sigma_min exactly.
    expect(s.front() == b, at, ": first level ", s.front(), ", expected ", b);
    if (n > 1) expect(s[n - 1] == a, at, ": last level ", s[n - 1], ", expected ", a);
    expect(rounded(s, f), at, ": float form is not the double rounded");
    accepted_as_ve_grid(s, at.c_str());
}

// Trained sigmas of a discrete model and the interpolations over them.
void fuzz_trained(gmk_fuzz::input& in) {
    const std::size_t n = in.range(0, 40);
    const std::vector<double> abar = list(in, n, [&] { return param(in, 0.001, 1); });
    bool abar_ok = n >= 1;
    for (std::size_t i = 0; i < n; ++i)
        abar_ok = abar_ok && abar[i] > 0 && abar[i] <= 1 && (i == 0 || abar[i] <= abar[i - 1]);
    std::vector<double> trained;
    if (call_checked(abar_ok, "sigmas_from_alphas_cumprod", [&] { trained = gmk::sigmas_from_alphas_cumprod(abar); })) {
        expect(trained.size() == n && finite_all(trained) && non_decreasing(trained), "sigmas_from_alphas_cumprod(",
               show(abar), ") = ", show(trained));
        for (double x : trained) expect(x >= 0, "sigmas_from_alphas_cumprod(", show(abar), ") gives ", x);
    }
    // sigma_at_timestep / timestep_at_sigma over arbitrary trained sigmas.
    const std::size_t m = in.range(0, 40);
    const std::vector<double> tr = list(in, m, [&] { return param(in, 0.01, 20); });
    bool tr_ok = m >= 2;
    for (std::size_t i = 0; i < m; ++i)
        tr_ok = tr_ok && tr[i] > 0 && std::isfinite(tr[i]) && (i == 0 || tr[i] >= tr[i - 1]);
    const double t = in.flag() ? param(in, 0, double(m)) : double(in.range(0, m));
    const auto how = in.flag() ? gmk::sigma_interpolation::log_linear : gmk::sigma_interpolation::linear;
    const bool t_ok = t >= 0 && t <= double(m) - 1;
    double sg = 0;
    const std::string at =
        "sigma_at_timestep(" + show(tr) + ", " + gmk::detail::value_text(t) + ", " + std::to_string(int(how)) + ")";
    if (call_checked(tr_ok && t_ok, at.c_str(), [&] { sg = gmk::sigma_at_timestep(tr, t, how); })) {
        const double lo = tr[std::size_t(std::floor(t))], hi = tr[std::size_t(std::ceil(t))];
        // (log-linear: exp(log x) carries eps |log x|)
        const double r = how == gmk::sigma_interpolation::linear
                             ? 4 * eps
                             : 4 * eps * (1 + std::fabs(std::log(hi)) + std::fabs(std::log(lo)));
        expect(std::isfinite(sg) && sg >= lo * (1 - r) && sg <= hi * (1 + r), at, " = ", sg, " outside [", lo, ", ", hi,
               "]");
        if (how == gmk::sigma_interpolation::log_linear) {
            // timestep_at_sigma inverts it inside the trained range, to the conditioning of the
            // segment (a log-sigma gap g moves t by eps |log sigma| / g).
            const double back = gmk::timestep_at_sigma(tr, sg);
            const std::size_t j = std::size_t(std::floor(t));
            const std::size_t k = std::min(j + 1, m - 1);
            const double gap = std::log(tr[k]) - std::log(tr[j]);
            // (timestep_at_sigma floors sigma at 1e-10, as diffusers does: below it, no inverse)
            // (on a plateau of equal trained sigmas every timestep of it is an inverse)
            bool plateau = false;
            for (std::size_t i = 0; i + 1 < m; ++i)
                plateau = plateau || (std::log(tr[i]) == std::log(tr[i + 1]) && std::log(sg) == std::log(tr[i]));
            if (gap > 0 && t < double(m - 1) && tr[j] >= 1e-10 && !plateau)
                expect(std::fabs(back - t) <= 1e-9 + 64 * eps * (1 + std::fabs(std::log(sg))) / gap, at, " = ", sg,
                       ": timestep_at_sigma gives ", back, ", expected ", t);
        }
    }
    const double sigma = param(in, 0, 30);
    double ts = 0;
    const std::string at2 = "timestep_at_sigma(" + show(tr) + ", " + gmk::detail::value_text(sigma) + ")";
    if (call_checked(tr_ok && sigma >= 0, at2.c_str(), [&] { ts = gmk::timestep_at_sigma(tr, sigma); })) {
        expect(ts >= 0 && ts <= double(m - 1), at2, " = ", ts, ", outside [0, ", m - 1, "]");
        // Below the trained range timestep 0, above it T - 1 (diffusers clamps the weight so).
        const double ls = std::log(std::max(sigma, 1e-10));
        if (ls < std::log(tr.front())) expect(ts == 0, at2, " = ", ts, ", below the range: expected 0");
        if (ls > std::log(tr.back())) expect(ts == double(m - 1), at2, " = ", ts, ", above the range: expected T - 1");
    }
}

// diffusers' EulerDiscrete grid from a training schedule and timesteps.
void fuzz_discrete_sigmas(gmk_fuzz::input& in) {
    // A real training schedule most of the time, arbitrary values otherwise.
    std::vector<double> abar;
    if (in.byte() < 200) {
        const std::size_t T = in.range(2, 1000);
        abar = gmk::alphas_cumprod(
            gmk::betas(static_cast<gmk::beta_schedule>(in.choice(4)), T, in.real(0, 0.01), in.real(0.01, 0.05)));
    } else {
        abar = list(in, in.range(0, 20), [&] { return param(in, 0.001, 1); });
    }
    const std::size_t T = abar.size();
    std::vector<double> t;
    if (in.flag() && T >= 1) {
        const auto spacing = static_cast<gmk::timestep_spacing>(in.choice(3));
        const std::size_t steps = in.range(1, T);
        if (gmk_fuzz::rejects([&] { t = gmk::timesteps_fractional(spacing, T, steps, 1); })) t.clear();
    } else {
        t = list(in, in.range(0, 12), [&] { return param(in, 0, double(T)); });
    }
    const auto spacing = static_cast<gmk::sigma_spacing>(in.choice(3));
    const auto final = in.flag() ? gmk::final_sigma::sigma_min : gmk::final_sigma::zero;
    const auto how = in.flag() ? gmk::sigma_interpolation::log_linear : gmk::sigma_interpolation::linear;
    const double rho = in.flag() ? 7.0 : param(in, 1, 10);

    bool valid = T >= 2 && !t.empty() && rho > 0 && std::isfinite(rho);
    for (std::size_t i = 0; i < T; ++i)
        valid = valid && abar[i] > 0 && abar[i] < 1 && (i == 0 || abar[i] <= abar[i - 1]);
    for (std::size_t i = 0; i < t.size(); ++i)
        valid = valid && t[i] >= 0 && t[i] <= double(T) - 1 && (i == 0 || t[i] < t[i - 1]);
    const std::string at = "discrete_sigmas(abar " + show(abar) + ", t " + show(t) + ", spacing " +
                           std::to_string(int(spacing)) + ", final " + std::to_string(int(final)) + ", how " +
                           std::to_string(int(how)) + ", rho " + gmk::detail::value_text(rho) + ")";
    gmk::discrete_grid<double> g;
    if (!call_checked(valid, at.c_str(), [&] { g = gmk::discrete_sigmas(abar, t, spacing, final, how, rho); })) return;
    const std::size_t n = t.size();
    expect(g.sigmas.size() == n + 1 && g.timesteps.size() == n && finite_all(g.sigmas) && finite_all(g.timesteps), at,
           ": sigmas ", show(g.sigmas), " timesteps ", show(g.timesteps));
    for (std::size_t i = 0; i < n; ++i) expect(g.sigmas[i] > 0, at, ": level ", i, " is ", g.sigmas[i]);
    expect(non_increasing(g.sigmas, n + 1), at, ": sigmas increase: ", show(g.sigmas));
    for (double x : g.timesteps) expect(x >= 0 && x <= double(T - 1), at, ": timestep ", x, " outside [0, T - 1]");
    expect(non_increasing(g.timesteps, n), at, ": timesteps increase: ", show(g.timesteps));
    // (sigmas_from_alphas_cumprod's sigma: sqrt((1 - a) / a), split where the quotient overflows)
    const double q = (1 - abar[0]) / abar[0];
    const double trained_min = std::isfinite(q) ? std::sqrt(q) : std::sqrt(1 - abar[0]) / std::sqrt(abar[0]);
    expect(final == gmk::final_sigma::zero ? g.sigmas.back() == 0 : g.sigmas.back() == trained_min, at,
           ": final level ", g.sigmas.back());
    const auto gf = gmk::discrete_sigmas<float>(abar, t, spacing, final, how, rho);
    expect(rounded(g.sigmas, gf.sigmas) && rounded(g.timesteps, gf.timesteps), at,
           ": float form is not the double rounded");
    // The grid the samplers run it on.
    std::string message;
    try {
        gmk::noise_grid::vp_sigmas(g.sigmas, g.timesteps);
    } catch (const std::invalid_argument& e) {
        expect(false, at, ": noise_grid::vp_sigmas rejects the grid: ", e.what());
    }
}

// ---- flow matching --------------------------------------------------------------------------

void fuzz_flow(gmk_fuzz::input& in) {
    gmk::flow_options o;
    o.shift = param(in, 0.2, 8);
    o.dynamic = in.flag();
    o.mu = param(in, -2, 3);
    o.form = in.flag() ? gmk::time_shift::linear : gmk::time_shift::exponential;
    o.shift_terminal = in.byte() < 64 ? param(in, 0, 0.5) : 0.0;
    o.num_train_timesteps = in.byte() < 8 ? 0 : in.range(1, 5000);
    bool options_ok = o.num_train_timesteps >= 1 && o.shift_terminal >= 0 && o.shift_terminal < 1;
    if (!o.dynamic)
        options_ok = options_ok && o.shift > 0 && std::isfinite(o.shift);
    else if (o.form == gmk::time_shift::linear)
        options_ok = options_ok && o.mu > 0 && std::isfinite(o.mu);
    else
        options_ok = options_ok && std::isfinite(o.mu);
    // The exponential time shift needs e^mu finite and > 0 (flow_time_shift's own check).
    const double m = o.form == gmk::time_shift::exponential ? std::exp(o.mu) : o.mu;
    const bool shift_ok = !o.dynamic || (m > 0 && std::isfinite(m));
    const std::string opts = "shift " + gmk::detail::value_text(o.shift) + " dynamic " + std::to_string(o.dynamic) +
                             " mu " + gmk::detail::value_text(o.mu) + " form " + std::to_string(int(o.form)) +
                             " terminal " + gmk::detail::value_text(o.shift_terminal) + " T " +
                             std::to_string(o.num_train_timesteps);

    // One level through the shifts.
    const double t = param(in, 0, 1);
    const bool t_ok = t >= 0 && t <= 1;
    call_checked(o.shift > 0 && std::isfinite(o.shift) && t_ok, "flow_shift", [&] {
        const double y = gmk::flow_shift(t, o.shift);
        expect(y >= 0 && y <= 1 && (t != 1 || y == 1) && (t != 0 || y == 0), "flow_shift(", t, ", ", o.shift, ") = ", y);
        // Monotone in t: the next double up never maps lower.
        if (t < 1) expect(gmk::flow_shift(std::nextafter(t, 2.0), o.shift) >= y, "flow_shift(", t, ", ", o.shift,
                          ") decreases at the next double");
    });
    call_checked(m > 0 && std::isfinite(m) && t_ok, "flow_time_shift", [&] {
        const double y = gmk::flow_time_shift(t, o.mu, o.form);
        expect(y >= 0 && y <= 1 && (t != 1 || y == 1), "flow_time_shift(", t, ", ", o.mu, ") = ", y);
    });

    // A grid: n levels, or given ones.
    std::vector<double> s;
    bool valid = options_ok && shift_ok;
    std::string at;
    std::size_t n;
    const bool given = in.flag();
    std::vector<double> user;
    if (!given) {
        n = in.byte() < 8 ? 0 : in.range(1, 400);
        valid = valid && n >= 1;
        at = "sigmas_flow(" + std::to_string(n) + ", " + opts + ")";
    } else {
        n = in.range(0, 40);
        user = list(in, n, [&] { return param(in, 0, 1); });
        valid = valid && n >= 1;
        for (std::size_t i = 0; i < n; ++i)
            valid = valid && user[i] > 0 && user[i] <= 1 && (i == 0 || user[i] < user[i - 1]);
        at = "sigmas_flow(" + show(user) + ", " + opts + ")";
    }
    std::string message;
    bool threw = false;
    try {
        s = given ? gmk::sigmas_flow(user, o) : gmk::sigmas_flow(n, o);
    } catch (const std::invalid_argument& e) {
        threw = true;
        message = e.what();
    }
    // With shift_terminal, a grid whose shifted last level is 1 cannot be stretched: documented
    // to throw (n = 1, or a shift that rounds the last level to 1).
    const bool unstretchable = o.shift_terminal > 0 && message.find("needs a last level below 1") != std::string::npos;
    expect(threw != valid || (valid && unstretchable), at,
           valid ? ": valid arguments rejected: " : ": invalid arguments accepted", message);
    if (threw) return;
    expect(s.size() == n + 1, at, ": size ", s.size());
    if (!given) expect(rounded(s, gmk::sigmas_flow<float>(n, o)), at, ": float form is not the double rounded");
    at += " = " + show(s);
    expect(finite_all(s) && s.back() == 0, at, ": non-finite or final level not 0");
    expect(non_increasing(s, s.size()), at, ": increases");
    for (std::size_t i = 0; i < n; ++i)
        expect(s[i] >= 0 && s[i] <= 1, at, ": level ", i, " = ", s[i], " outside [0, 1]");
    if (o.shift_terminal > 0)
        expect(std::fabs(s[n - 1] - o.shift_terminal) <= 1e-12 * o.shift_terminal + 8 * eps, at,
               ": last level is not shift_terminal");
    // A flow grid: noise_grid::flow accepts it, unless extreme options saturate levels to exactly
    // 1 (beyond the first) or 0 (before the last), which the exact levels round to.
    bool saturated = false;
    for (std::size_t i = 0; i < n; ++i) saturated = saturated || (i > 0 && s[i] == 1) || s[i] == 0;
    if (saturated) return;
    try {
        gmk::noise_grid::flow(s, double(o.num_train_timesteps));
    } catch (const std::invalid_argument& e) {
        expect(false, at, ": noise_grid::flow rejects it: ", e.what());
    }
}

// ---- noise grids ----------------------------------------------------------------------------

// Whether arguments are valid; `either` where the answer is a matter of rounding.
enum class verdict { invalid, valid, either };

// Runs f() under a verdict: valid must not throw, invalid must throw std::invalid_argument,
// either may do both. Returns whether f ran to completion.
template <class F>
bool call_verdict(verdict v, const char* what, F&& f) {
    if (v != verdict::either) return call_checked(v == verdict::valid, what, f);
    return !gmk_fuzz::rejects(f);
}

// The documented validity of levels: alpha and sigma finite and >= 0, never both 0, alpha = 0
// only at level 0, sigma = 0 only at level N, sigma / alpha non-increasing, model times
// finite, N + 1 >= 2 levels. The ratios are compared as sigma_{i-1} alpha_i >= sigma_i
// alpha_{i-1} in long double (no underflow; 2^-64 rounding): within 8 eps of a tie either
// answer is right.
verdict levels_verdict(const std::vector<gmk::noise_level>& l) {
    if (l.size() < 2) return verdict::invalid;
    verdict v = verdict::valid;
    for (std::size_t i = 0; i < l.size(); ++i) {
        const auto& x = l[i];
        if (!(std::isfinite(x.alpha) && x.alpha >= 0 && std::isfinite(x.sigma) && x.sigma >= 0 &&
              std::isfinite(x.model_time)))
            return verdict::invalid;
        if (x.alpha == 0 && i != 0) return verdict::invalid;
        if (x.sigma == 0 && i + 1 != l.size()) return verdict::invalid;
        if (i == 0) continue;
        const auto& p = l[i - 1];
        const long double lhs = (long double)p.sigma * x.alpha, rhs = (long double)x.sigma * p.alpha;
        if (lhs >= rhs * (1 + 8 * (long double)eps)) continue;
        if (lhs >= rhs * (1 - 8 * (long double)eps)) {
            v = verdict::either;
            continue;
        }
        return verdict::invalid;
    }
    return v;
}

// user_map: the grid's model times come from a user function (ve with c_noise), whose values
// off the grid are its own (ln 0 = -inf at r = 0).
void check_grid(const gmk::noise_grid& g, const std::string& at, gmk_fuzz::input& in, bool user_map = false) {
    const std::vector<gmk::noise_level> l(g.begin(), g.end());
    const verdict v = levels_verdict(l);
    expect(v != verdict::invalid, at, ": the grid breaks its own invariants");
    bool moderate_times = true;  // (past 1e100, extrapolating model times may overflow)
    for (std::size_t i = 0; i < g.size(); ++i) {
        moderate_times = moderate_times && std::fabs(g[i].model_time) <= 1e100;
        // ratio() divides where the validation cross-multiplies: equal to rounding
        if (i + 1 < g.size() && v == verdict::valid)
            expect(g.ratio(i) >= g.ratio(i + 1) * (1 - 4 * eps), at, ": ratio increases at ", i, ": ", g.ratio(i),
                   " then ", g.ratio(i + 1), " (levels {", g[i].alpha, ", ", g[i].sigma, "}, {", g[i + 1].alpha, ", ",
                   g[i + 1].sigma, "})");
    }
    // A level off the grid.
    const double r = param(in, 0, 50);
    const bool general = g.kind() == gmk::noise_grid::process::general;
    const bool ok = !general && r >= 0 && std::isfinite(r) &&
                    (g.kind() != gmk::noise_grid::process::vp || r <= gmk::noise_grid::max_vp_ratio);
    gmk::noise_level x;
    if (!call_checked(ok, (at + " level_at(" + gmk::detail::value_text(r) + ")").c_str(), [&] { x = g.level_at(r); }))
        return;
    expect(std::isfinite(x.alpha) && std::isfinite(x.sigma) &&
               (user_map || !moderate_times || std::isfinite(x.model_time)) && x.alpha >= 0 && x.sigma >= 0 &&
               (x.alpha > 0 || x.sigma > 0),
           at, ": level_at(", r, ") = {", x.alpha, ", ", x.sigma, ", ", x.model_time, "}");
    expect(close(x.sigma, r * x.alpha, 4 * eps) || x.alpha == 0, at, ": level_at(", r,
           ") has sigma / alpha = ", x.sigma / x.alpha);
}

void fuzz_noise_grid(gmk_fuzz::input& in) {
    const std::size_t which = in.choice(7);
    const std::size_t n = in.range(0, 24);
    std::string at;
    switch (which) {
        case 0:
        case 1: {  // vp(abar, timesteps [double or int64], final)
            const std::size_t T = in.range(0, 50);
            std::vector<double> abar = list(in, T, [&] { return param(in, 0, 1); });
            const std::vector<double> t =
                list(in, n, [&] { return in.flag() ? double(in.range(0, T + 1)) : param(in, 0, double(T)); });
            const double fin = in.flag() ? 1.0 : param(in, 0, 1);
            at = "noise_grid::vp(abar " + show(abar) + ", t " + show(t) + ", final " + gmk::detail::value_text(fin) +
                 ")";
            bool valid = T >= 1 && !t.empty() && fin > 0 && fin <= 1;
            std::vector<gmk::noise_level> levels;
            for (double x : t) {
                const bool ok = x >= 0 && x <= double(T) - 1 && x == std::floor(x);
                valid = valid && ok && abar[std::size_t(x)] >= 0 && abar[std::size_t(x)] <= 1;
                if (valid) levels.push_back({std::sqrt(abar[std::size_t(x)]), std::sqrt(1 - abar[std::size_t(x)]), x});
            }
            levels.push_back({std::sqrt(fin), std::sqrt(1 - fin), -1});
            verdict v = valid ? levels_verdict(levels) : verdict::invalid;
            std::vector<std::int64_t> ti;
            for (double x : t) ti.push_back(std::isfinite(x) && std::fabs(x) < 1e18 ? std::int64_t(x) : -1);
            const bool as_int = which == 1;
            if (as_int) {
                // The integer form: the same check on the integers (fractions truncated here).
                valid = T >= 1 && !t.empty() && fin > 0 && fin <= 1;
                levels.clear();
                for (std::int64_t x : ti) {
                    valid = valid && x >= 0 && x <= std::int64_t(T) - 1 && abar[std::size_t(x)] >= 0 &&
                            abar[std::size_t(x)] <= 1;
                    if (valid)
                        levels.push_back(
                            {std::sqrt(abar[std::size_t(x)]), std::sqrt(1 - abar[std::size_t(x)]), double(x)});
                }
                levels.push_back({std::sqrt(fin), std::sqrt(1 - fin), -1});
                v = valid ? levels_verdict(levels) : verdict::invalid;
            }
            gmk::noise_grid g({{1, 1, 0}, {1, 0, 0}});
            if (!call_verdict(v, at.c_str(), [&] {
                    g = as_int ? gmk::noise_grid::vp(abar, gmk::span<const std::int64_t>(ti), fin)
                               : gmk::noise_grid::vp(abar, t, fin);
                }))
                return;
            check_grid(g, at, in);
            return;
        }
        case 2: {  // vp_sigmas(sigmas, model_times)
            const std::vector<double> s = list(in, n, [&] { return param(in, 0, 15); });
            const std::size_t nt = n == 0 ? 0 : n - in.range(0, 1) + (in.byte() < 8 ? 1 : 0);
            const std::vector<double> mt = list(in, nt, [&] { return param(in, 0, 1000); });
            at = "noise_grid::vp_sigmas(" + show(s) + ", " + show(mt) + ")";
            // Documented: N + 1 >= 2 sigmas in [0, 2^1022]; N or N + 1 model times; the grid's
            // rules (sigma / alpha = sigmas[i] non-increasing, 0 only at the end; times finite).
            bool valid = n >= 2 && (nt == n - 1 || nt == n);
            for (std::size_t i = 0; i < n; ++i)
                valid = valid && s[i] >= 0 && s[i] <= 0x1p1022 && (i == 0 || s[i] <= s[i - 1]) &&
                        (s[i] > 0 || i + 1 == n) && (i >= nt || std::isfinite(mt[i]));
            // The levels as vp_sigmas computes them: neighbouring sigmas within rounding of each
            // other may compare either way once multiplied out.
            std::vector<gmk::noise_level> lv;
            for (std::size_t i = 0; valid && i < n; ++i) {
                // (past 2^32, 1 + r^2 is r^2: alpha = 1 / r, sigma = 1)
                const double a = s[i] >= 0x1p32 ? 1 / s[i] : 1 / std::sqrt(1 + s[i] * s[i]);
                lv.push_back({a, s[i] >= 0x1p32 ? 1.0 : s[i] * a, i < nt ? mt[i] : 0.0});
            }
            const verdict v = !valid                                  ? verdict::invalid
                              : levels_verdict(lv) == verdict::either ? verdict::either
                                                                      : verdict::valid;
            gmk::noise_grid g({{1, 1, 0}, {1, 0, 0}});
            if (!call_verdict(v, at.c_str(), [&] { g = gmk::noise_grid::vp_sigmas(s, mt); })) return;
            check_grid(g, at, in);
            for (std::size_t i = 0; i < n; ++i)
                expect(close(g.ratio(i), s[i], 4 * eps), at, ": ratio ", i, " = ", g.ratio(i));
            return;
        }
        case 3:
        case 4: {  // ve(sigmas), ve(sigmas, c_noise)
            const std::vector<double> s = list(in, n, [&] { return param(in, 0, 80); });
            at = std::string(which == 3 ? "noise_grid::ve(" : "noise_grid::ve(c_noise, ") + show(s) + ")";
            bool valid = n >= 2;
            for (std::size_t i = 0; i < n; ++i)
                valid = valid && std::isfinite(s[i]) && s[i] >= 0 && (i == 0 || s[i] <= s[i - 1]) &&
                        (s[i] > 0 || i + 1 == n);
            gmk::noise_grid g({{1, 1, 0}, {1, 0, 0}});
            if (!call_checked(valid, at.c_str(), [&] {
                    if (which == 3)
                        g = gmk::noise_grid::ve(s);
                    else
                        g = gmk::noise_grid::ve(s, [](double x) { return std::log(x) / 4; });
                }))
                return;
            check_grid(g, at, in, which == 4);
            return;
        }
        case 5: {  // flow(ts, T)
            const std::vector<double> ts = list(in, n, [&] { return param(in, 0, 1); });
            const double T = in.flag() ? 1000.0 : param(in, 1, 1000);
            at = "noise_grid::flow(" + show(ts) + ", " + gmk::detail::value_text(T) + ")";
            bool valid = n >= 2 && T > 0 && std::isfinite(T);
            std::vector<gmk::noise_level> levels;
            for (double x : ts) {
                valid = valid && x >= 0 && x <= 1;
                levels.push_back({1 - x, x, x * T});
            }
            const verdict v = valid ? levels_verdict(levels) : verdict::invalid;
            gmk::noise_grid g({{1, 1, 0}, {1, 0, 0}});
            if (!call_verdict(v, at.c_str(), [&] { g = gmk::noise_grid::flow(ts, T); })) return;
            check_grid(g, at, in);
            return;
        }
        default: {  // arbitrary levels
            std::vector<gmk::noise_level> levels(n);
            for (auto& l : levels) l = {param(in, 0, 1), param(in, 0, 10), param(in, 0, 1000)};
            at = "noise_grid(levels of " + std::to_string(n) + ")";
            gmk::noise_grid g({{1, 1, 0}, {1, 0, 0}});
            if (!call_verdict(levels_verdict(levels), at.c_str(), [&] { g = gmk::noise_grid(levels); })) return;
            check_grid(g, at, in);
            return;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    gmk_fuzz::input in(data, size);
    switch (in.choice(8)) {
        case 0:
            fuzz_betas(in);
            break;
        case 1:
            fuzz_cumprod(in);
            break;
        case 2:
            fuzz_timesteps(in);
            break;
        case 3:
            fuzz_sigmas(in);
            break;
        case 4:
            fuzz_trained(in);
            break;
        case 5:
            fuzz_discrete_sigmas(in);
            break;
        case 6:
            fuzz_flow(in);
            break;
        default:
            fuzz_noise_grid(in);
            break;
    }
    return 0;
}
