// gmk example: every sampler of <gmk/diffusion/samplers.hpp> on a 2-D Gaussian mixture, with the
// mixture's exact denoiser standing in for a trained network.
//
// Data: eight Gaussians of std 0.2 and equal weight on a ring of radius 2. Each 2-D point is one
// sample (latent batch = 4000 points, sample_size = 2), so one model call denoises all of them.
// For a Gaussian mixture E[x0 | x] has a closed form at every level x = alpha x0 + sigma eps:
// component k (weight pi_k, mean m_k, std s_k) gives x | k ~ N(alpha m_k, v_k I) with
// v_k = alpha^2 s_k^2 + sigma^2, the posterior weights are w_k(x) ~ pi_k N(x; alpha m_k, v_k I)
// (computed with log-sum-exp), and
//   E[x0 | x] = sum_k w_k (m_k + alpha s_k^2 / v_k (x - alpha m_k)).
// With the exact denoiser a sampler's error is its own: discretisation error, which vanishes as
// the steps grow for every sampler here but one (flow_euler stochastic, see samplers()).
//
// Each sampler runs at 10, 20, 50 and 200 steps from the same initial noise. The first table
// gives the sliced Wasserstein-2 distance between its 4000 points and 4000 i.i.d. points of the
// mixture, beside the noise floor (the same distance between two i.i.d. samples); the second the
// spread of the points around their component, which shows small errors SW2 cannot. Pictures: one
// SVG per sampler (10, 20 and 50 steps) with the points over the shaded density, and one of the
// mixture itself, written into the directory given on the command line (default: the current
// directory). A few seconds on one core.
//
//   gmk_sample_2d [out_dir]
#include <gmk/gmk.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr std::size_t points = 4000;          // latent batch: one 2-D point per sample
constexpr std::size_t dims = 2;               // sample_size
constexpr std::uint64_t reference_seed = 11;  // the i.i.d. sample the table compares against
constexpr std::uint64_t initial_seed = 22;    // x = sigma_0 z, the same z for every sampler
constexpr std::uint64_t step_seed = 33;       // gmk::philox_noise: stream k = step k
constexpr double pi = 3.14159265358979323846;

// ---- the data and its exact denoiser -------------------------------------------------------

struct gaussian_mixture {
    std::vector<double> weight, mean_x, mean_y, stddev;

    // `count` components of std `s` and equal weight on a circle of `radius`.
    static gaussian_mixture ring(std::size_t count, double radius, double s) {
        gaussian_mixture m;
        for (std::size_t k = 0; k < count; ++k) {
            const double angle = 2 * pi * double(k) / double(count);
            m.weight.push_back(1.0 / double(count));
            m.mean_x.push_back(radius * std::cos(angle));
            m.mean_y.push_back(radius * std::sin(angle));
            m.stddev.push_back(s);
        }
        return m;
    }
    std::size_t size() const { return weight.size(); }

    // `n` i.i.d. points (x, y interleaved), counter-based from `seed`.
    std::vector<float> draw(std::size_t n, std::uint64_t seed) const {
        std::vector<double> u(n), z(2 * n);
        gmk::random::uniform_fill(gmk::random::philox_stream(seed, 0), 0, u.data(), n);
        gmk::random::normal_fill(gmk::random::philox_stream(seed, 1), 0, z.data(), 2 * n);
        std::vector<float> out(2 * n);
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t k = 0;
            for (double c = weight[0]; u[i] >= c && k + 1 < size(); c += weight[++k]) {
            }
            out[2 * i] = float(mean_x[k] + stddev[k] * z[2 * i]);
            out[2 * i + 1] = float(mean_y[k] + stddev[k] * z[2 * i + 1]);
        }
        return out;
    }
};

// E[x0 | x] at one level (alpha, sigma), the closed form at the top of the file, with the
// per-component constants of the level computed once per model call.
class mixture_denoiser {
public:
    static constexpr std::size_t max_components = 16;

    mixture_denoiser(const gaussian_mixture& m, double alpha, double sigma) : m_(m), alpha_(alpha) {
        if (m.size() > max_components) throw std::invalid_argument("mixture_denoiser: too many components");
        for (std::size_t k = 0; k < m.size(); ++k) {
            const double v = alpha * alpha * m.stddev[k] * m.stddev[k] + sigma * sigma;
            log_norm_[k] = std::log(m.weight[k]) - std::log(2 * pi * v);  // log pi_k N(.) at its centre
            inv_2v_[k] = 1 / (2 * v);
            gain_[k] = alpha * m.stddev[k] * m.stddev[k] / v;
        }
    }

    void operator()(double x, double y, double& x0, double& y0) const {
        double logp[max_components], best = -INFINITY;
        const std::size_t K = m_.size();
        for (std::size_t k = 0; k < K; ++k) {
            const double dx = x - alpha_ * m_.mean_x[k], dy = y - alpha_ * m_.mean_y[k];
            logp[k] = log_norm_[k] - (dx * dx + dy * dy) * inv_2v_[k];
            best = std::max(best, logp[k]);
        }
        double total = 0, ex = 0, ey = 0;
        for (std::size_t k = 0; k < K; ++k) {
            const double w = std::exp(logp[k] - best);  // log-sum-exp: the largest weight is 1
            total += w;
            ex += w * (m_.mean_x[k] + gain_[k] * (x - alpha_ * m_.mean_x[k]));
            ey += w * (m_.mean_y[k] + gain_[k] * (y - alpha_ * m_.mean_y[k]));
        }
        x0 = ex / total;
        y0 = ey / total;
    }

private:
    const gaussian_mixture& m_;
    double alpha_;
    std::array<double, max_components> log_norm_{}, inv_2v_{}, gain_{};
};

// The network of this example: the exact denoiser, written in the parameterisation the model is
// declared with (epsilon on the VP grid, the denoised sample on the VE grid, the flow velocity on
// the flow grid, as models trained for those grids predict). With eps = (x - alpha D) / sigma:
// epsilon -> eps, sample -> D, v -> alpha eps - sigma D, flow_velocity -> eps - D. The samplers
// never call a model at sigma = 0, and only v, sample and flow_velocity models at alpha = 0.
struct mixture_network {
    const gaussian_mixture* mixture;
    gmk::prediction predicts;

    void operator()(const float* x, float* out, const gmk::model_call& call) const {
        const double a = call.level.alpha, s = call.level.sigma;
        const mixture_denoiser denoise(*mixture, a, s);
        for (std::size_t i = 0; i < call.batch; ++i) {
            const float* xi = x + i * call.sample_size;
            double d[2];
            denoise(xi[0], xi[1], d[0], d[1]);
            for (std::size_t j = 0; j < 2; ++j) {
                const double eps = predicts == gmk::prediction::sample ? 0 : (xi[j] - a * d[j]) / s;
                double o = d[j];
                if (predicts == gmk::prediction::epsilon) o = eps;
                if (predicts == gmk::prediction::v) o = a * eps - s * d[j];
                if (predicts == gmk::prediction::flow_velocity) o = eps - d[j];
                out[i * call.sample_size + j] = float(o);
            }
        }
    }
};

// ---- how close the points are --------------------------------------------------------------------

// Sliced Wasserstein-2 to a fixed reference set of the same size: the root mean over `directions`
// evenly spaced directions of the squared 1-D W2 between sorted projections (the reference's
// are sorted once).
class sliced_w2 {
public:
    explicit sliced_w2(const std::vector<float>& reference, std::size_t directions = 64)
        : n_(reference.size() / 2), directions_(directions), sorted_(directions * n_), scratch_(n_) {
        for (std::size_t d = 0; d < directions_; ++d) {
            project(reference, d, &sorted_[d * n_]);
            std::sort(sorted_.begin() + std::ptrdiff_t(d * n_), sorted_.begin() + std::ptrdiff_t((d + 1) * n_));
        }
    }

    double operator()(const std::vector<float>& p) {
        double total = 0;
        for (std::size_t d = 0; d < directions_; ++d) {
            project(p, d, scratch_.data());
            std::sort(scratch_.begin(), scratch_.end());
            double w2 = 0;
            for (std::size_t i = 0; i < n_; ++i) w2 += (scratch_[i] - sorted_[d * n_ + i]) * (scratch_[i] - sorted_[d * n_ + i]);
            total += w2 / double(n_);
        }
        return std::sqrt(total / double(directions_));
    }

private:
    std::size_t n_, directions_;
    std::vector<double> sorted_, scratch_;

    void project(const std::vector<float>& p, std::size_t d, double* out) const {
        const double angle = pi * double(d) / double(directions_), c = std::cos(angle), s = std::sin(angle);
        for (std::size_t i = 0; i < n_; ++i) out[i] = c * p[2 * i] + s * p[2 * i + 1];
    }
};

// SW2 is dominated by how many points each component got (mass moved between components is
// expensive), which is random even for a perfect sampler: it says "converged or not" but is too
// noisy to rank close samplers. The spread of the points around their component is exact to
// within 1%: the RMS distance per axis to the nearest mean (the component std, 0.2, for a
// perfect sampler), and the fraction of points farther than 4 std from every mean (0.03%).
struct cluster_spread {
    double stddev = 0;
    double off = 0;
};

cluster_spread spread(const gaussian_mixture& m, const std::vector<float>& p) {
    const std::size_t n = p.size() / 2;
    double sum = 0;
    std::size_t inside = 0;
    for (std::size_t i = 0; i < n; ++i) {
        double best = INFINITY, limit = 0;
        for (std::size_t k = 0; k < m.size(); ++k) {
            const double dx = p[2 * i] - m.mean_x[k], dy = p[2 * i + 1] - m.mean_y[k];
            const double r2 = (dx * dx + dy * dy);
            if (r2 < best) {
                best = r2;
                limit = 16 * m.stddev[k] * m.stddev[k];
            }
        }
        if (best <= limit) {
            sum += best;
            ++inside;
        }
    }
    return {std::sqrt(sum / (2 * double(std::max<std::size_t>(inside, 1)))), double(n - inside) / double(n)};
}

// ---- the grids -----------------------------------------------------------------------------------

enum class grid_kind { vp, ve, flow };

const char* grid_label(grid_kind g) {
    switch (g) {
        case grid_kind::vp: return "VP";
        case grid_kind::ve: return "VE";
        case grid_kind::flow: return "flow";
    }
    return "?";
}

const char* grid_description(grid_kind g) {
    switch (g) {
        case grid_kind::vp: return "VP: linear betas 1e-4 .. 0.02, T = 1000, trailing timesteps, epsilon model";
        case grid_kind::ve: return "VE: Karras sigmas 80 .. 0.002, rho 7, then 0, denoiser (sample) model";
        case grid_kind::flow: return "flow: t = 1 .. 1/1000 (sigmas_flow), then 0, flow-velocity model";
    }
    return "?";
}

gmk::prediction grid_prediction(grid_kind g) {
    switch (g) {
        case grid_kind::vp: return gmk::prediction::epsilon;
        case grid_kind::ve: return gmk::prediction::sample;
        case grid_kind::flow: return gmk::prediction::flow_velocity;
    }
    return gmk::prediction::sample;
}

// The grids take spans of lvalues: the schedules are named before the grid is built.
gmk::noise_grid make_grid(grid_kind g, std::size_t steps) {
    switch (g) {
        case grid_kind::vp: {
            static const std::vector<double> betas = gmk::betas(gmk::beta_schedule::linear, 1000, 1e-4, 0.02);
            static const std::vector<double> abar = gmk::alphas_cumprod(betas);
            const std::vector<std::int64_t> t = gmk::timesteps(gmk::timestep_spacing::trailing, 1000, steps);
            return gmk::noise_grid::vp(abar, t);
        }
        case grid_kind::ve: {
            const std::vector<double> sigmas = gmk::sigmas_karras(steps, 0.002, 80.0, 7.0);
            return gmk::noise_grid::ve(sigmas);
        }
        case grid_kind::flow: {
            const std::vector<double> t = gmk::sigmas_flow(steps);
            return gmk::noise_grid::flow(t);
        }
    }
    throw std::logic_error("make_grid: not a grid_kind");
}

// ---- the samplers ----------------------------------------------------------------------------------

using network = gmk::model_function<mixture_network>;
using runner = std::function<gmk::sample_result(network&, const gmk::noise_grid&, gmk::latent<float>,
                                                gmk::philox_noise&, gmk::sampler_workspace<float>&)>;

struct sampler_run {
    std::string name;     // row label and file name
    std::string setting;  // what is not a default
    grid_kind grid;
    runner run;
};

template <class Sampler>
runner runner_of(Sampler sampler) {
    return [sampler](network& net, const gmk::noise_grid& grid, gmk::latent<float> x, gmk::philox_noise& noise,
                     gmk::sampler_workspace<float>& workspace) {
        return gmk::sample(sampler, net, grid, x, noise, workspace);
    };
}

std::vector<sampler_run> samplers() {
    // diffusers clips the x0 of DDPM and DDIM to [-1, 1] by default (image data); this data
    // reaches +-2.6, so they run unclipped. DDIM with eta 1 is DDPM with the fixed_small variance
    // (and euler_ancestral on the same grid): the same numbers. That variance drops the spread of
    // x0 given x, so on this grid the clusters come out narrow, slowly converging (for a single
    // Gaussian of std 0.2 the recursion gives 0.159, 0.185, 0.196 at 50, 200, 1000 steps).
    gmk::ddpm ddpm;
    ddpm.threshold = gmk::x0_threshold::none();
    gmk::ddim ddim0, ddim1;
    ddim0.threshold = ddim1.threshold = gmk::x0_threshold::none();
    ddim1.eta = 1;
    // EDM's stochastic sampler (Karras et al. 2022, Algorithm 2, with their ImageNet-64 S_churn,
    // S_tmin, S_tmax). S_noise stays 1: it makes up for a trained network's errors, and this
    // denoiser is exact.
    gmk::heun edm;
    edm.s_churn = 40;
    edm.s_tmin = 0.05;
    edm.s_tmax = 50;
    edm.draw_unused_noise = true;
    // x' = a' D + s' z re-noises the posterior mean, not a sample of x0 given x: the spread of x0
    // given x is lost at every step, however small, so this sampler does not converge to the
    // data for a denoiser (it suits distilled, consistency-type models, whose output is a sample).
    gmk::flow_euler flow_sde;
    flow_sde.stochastic = true;
    return {
        {"ddpm", "fixed_small variance", grid_kind::vp, runner_of(ddpm)},
        {"ddim_eta0", "eta 0", grid_kind::vp, runner_of(ddim0)},
        {"ddim_eta1", "eta 1", grid_kind::vp, runner_of(ddim1)},
        {"euler", "", grid_kind::ve, runner_of(gmk::euler{})},
        {"euler_ancestral", "eta 1", grid_kind::ve, runner_of(gmk::euler_ancestral{})},
        {"heun", "", grid_kind::ve, runner_of(gmk::heun{})},
        {"edm_heun_churn", "S_churn 40, S_tmin 0.05, S_tmax 50", grid_kind::ve, runner_of(edm)},
        {"dpmpp_2m", "", grid_kind::ve, runner_of(gmk::dpmpp_2m{})},
        {"dpmpp_2m_sde", "eta 1, midpoint", grid_kind::ve, runner_of(gmk::dpmpp_2m_sde{})},
        // The SDE of Song et al. 2021 and its probability-flow ODE, on the VP process they wrote it for.
        {"euler_maruyama", "", grid_kind::vp, runner_of(gmk::euler_maruyama{})},
        {"probability_flow_euler", "", grid_kind::vp, runner_of(gmk::probability_flow_euler{})},
        {"flow_euler", "", grid_kind::flow, runner_of(gmk::flow_euler{})},
        {"flow_euler_stochastic", "stochastic", grid_kind::flow, runner_of(flow_sde)},
        {"flow_heun", "", grid_kind::flow, runner_of(gmk::flow_heun{})},
    };
}

// ---- pictures ----------------------------------------------------------------------------------------

constexpr double view = 3.3;   // panels show [-view, view]^2
constexpr double panel = 300;  // pixels per panel side
constexpr double margin = 14;
constexpr double header = 46;

struct svg_panel {
    std::string title;
    const std::vector<float>* points;  // null: the density alone
};

double to_px(double v) { return (v + view) / (2 * view) * panel; }

std::string fixed(double v, int digits = 3) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// The density, exact for well-separated isotropic components: each one a disc of radius 3 s_k
// filled with a radial gradient of opacity exp(-r^2 / (2 s_k^2)) (defined once, as #density),
// scaled by its peak density pi_k / s_k^2.
void write_density(std::string& o, const gaussian_mixture& m) {
    double peak = 0;
    for (std::size_t k = 0; k < m.size(); ++k) peak = std::max(peak, m.weight[k] / (m.stddev[k] * m.stddev[k]));
    const double px = panel / (2 * view);
    for (std::size_t k = 0; k < m.size(); ++k)
        o += "<circle cx='" + fixed(to_px(m.mean_x[k]), 1) + "' cy='" + fixed(panel - to_px(m.mean_y[k]), 1) +
             "' r='" + fixed(3 * m.stddev[k] * px, 1) + "' fill='url(#density)' fill-opacity='" +
             fixed(m.weight[k] / (m.stddev[k] * m.stddev[k]) / peak) + "'/>";
    o += "\n";
}

// Contours: the circle of radius 2 s_k around each mean holds 86% of that component's mass.
void write_contours(std::string& o, const gaussian_mixture& m) {
    const double px = panel / (2 * view);
    for (std::size_t k = 0; k < m.size(); ++k)
        o += "<circle cx='" + fixed(to_px(m.mean_x[k]), 1) + "' cy='" + fixed(panel - to_px(m.mean_y[k]), 1) +
             "' r='" + fixed(2 * m.stddev[k] * px, 1) +
             "' fill='none' stroke='#1f4e8c' stroke-width='1' stroke-dasharray='4 3'/>";
    o += "\n";
}

// Points as the zero-length subpaths of one path with round caps: a dot each, a few bytes a point.
void write_points(std::string& o, const std::vector<float>& p) {
    o += "<path fill='none' stroke='#222' stroke-opacity='0.45' stroke-width='1.8' stroke-linecap='round' d='";
    char buf[48];
    for (std::size_t i = 0; i < p.size() / 2; ++i) {
        const double x = to_px(p[2 * i]), y = panel - to_px(p[2 * i + 1]);
        if (!(x > -2 && x < panel + 2 && y > -2 && y < panel + 2)) continue;  // outside the panel
        std::snprintf(buf, sizeof buf, "M%.1f %.1fh0", x, y);
        o += buf;
    }
    o += "'/>\n";
}

void write_svg(const std::filesystem::path& file, const std::string& caption, const gaussian_mixture& m,
               const std::vector<svg_panel>& panels) {
    const double width = margin + double(panels.size()) * (panel + margin), height = header + panel + margin;
    std::string o = "<svg xmlns='http://www.w3.org/2000/svg' width='" + fixed(width, 0) + "' height='" +
                    fixed(height, 0) + "' viewBox='0 0 " + fixed(width, 0) + " " + fixed(height, 0) +
                    "' font-family='sans-serif'>\n<defs><radialGradient id='density'>";
    for (int i = 0; i <= 12; ++i) {
        const double r = 3.0 * i / 12;  // in units of s_k
        o += "<stop offset='" + fixed(i / 12.0) + "' stop-color='#3d7cc9' stop-opacity='" +
             fixed(0.85 * std::exp(-r * r / 2)) + "'/>";
    }
    o += "</radialGradient></defs>\n<rect width='100%' height='100%' fill='white'/>\n<text x='" + fixed(margin, 0) +
         "' y='18' font-size='14'>" + caption + "</text>\n";
    for (std::size_t j = 0; j < panels.size(); ++j) {
        const double left = margin + double(j) * (panel + margin);
        o += "<g transform='translate(" + fixed(left, 0) + " " + fixed(header, 0) + ")'>\n<text x='0' y='-7' " +
             "font-size='12'>" + panels[j].title + "</text>\n<rect width='" + fixed(panel, 0) + "' height='" +
             fixed(panel, 0) + "' fill='#fafbfd' stroke='#999'/>\n";
        write_density(o, m);
        if (panels[j].points) write_points(o, *panels[j].points);
        write_contours(o, m);
        o += "</g>\n";
    }
    o += "</svg>\n";
    std::ofstream f(file, std::ios::binary);
    f << o;
    if (!f) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace

int main(int argc, char** argv) try {
    const std::filesystem::path out_dir = argc > 1 ? argv[1] : ".";
    std::filesystem::create_directories(out_dir);
    const auto start = std::chrono::steady_clock::now();

    const gaussian_mixture mixture = gaussian_mixture::ring(8, 2.0, 0.2);
    const std::vector<float> reference = mixture.draw(points, reference_seed);
    sliced_w2 distance(reference);
    // The noise floor: SW2 between two independent i.i.d. samples of this size, over a few pairs.
    constexpr int floor_pairs = 8;
    double floor_mean = 0, floor_sq = 0;
    for (int k = 0; k < floor_pairs; ++k) {
        const double d = sliced_w2(mixture.draw(points, 100 + 2 * k))(mixture.draw(points, 101 + 2 * k));
        floor_mean += d / floor_pairs;
        floor_sq += d * d / floor_pairs;
    }
    const double floor_sd = std::sqrt(std::max(floor_sq - floor_mean * floor_mean, 0.0));
    const std::vector<float> iid = mixture.draw(points, 99);
    const cluster_spread truth = spread(mixture, iid);

    // One standard normal z for every run: x = alpha_0 0 + sigma_0 z (pure noise at level 0).
    std::vector<float> z(points * dims), zeros(points * dims, 0.0f);
    gmk::random::normal_fill(gmk::random::philox_stream(initial_seed, 0), 0, z.data(), z.size());
    gmk::sampler_workspace<float> workspace;  // shared by all runs: allocated once

    // 10, 20 and 50 steps are pictured; 200 shows where each sampler is going.
    constexpr std::size_t counts = 4, pictured = 3;
    const std::size_t step_counts[counts] = {10, 20, 50, 200};
    struct row {
        const sampler_run* run;
        double sw2[counts];
        cluster_spread spread[counts];
        std::size_t nfe[counts];
    };
    const std::vector<sampler_run> runs = samplers();
    std::vector<row> rows;
    for (const sampler_run& s : runs) {
        const gmk::prediction p = grid_prediction(s.grid);
        network net = gmk::make_model(p, mixture_network{&mixture, p});
        row r{&s, {}, {}, {}};
        std::vector<std::vector<float>> results;
        std::vector<svg_panel> panels;
        for (std::size_t j = 0; j < counts; ++j) {
            const gmk::noise_grid grid = make_grid(s.grid, step_counts[j]);
            std::vector<float> x(points * dims);
            gmk::add_noise(grid[0], zeros.data(), z.data(), x.data(), x.size());
            gmk::philox_noise noise(step_seed);
            r.nfe[j] = s.run(net, grid, gmk::latent<float>(x.data(), points, dims), noise, workspace).model_calls;
            r.sw2[j] = distance(x);
            r.spread[j] = spread(mixture, x);
            if (j >= pictured) continue;
            panels.push_back({std::to_string(step_counts[j]) + " steps, NFE " + std::to_string(r.nfe[j]) + ": SW2 " +
                                  fixed(r.sw2[j]) + ", std " + fixed(r.spread[j].stddev),
                              nullptr});
            results.push_back(std::move(x));
        }
        for (std::size_t j = 0; j < pictured; ++j) panels[j].points = &results[j];
        write_svg(out_dir / (s.name + ".svg"),
                  s.name + (s.setting.empty() ? "" : " (" + s.setting + ")") + " on the " + grid_description(s.grid),
                  mixture, panels);
        rows.push_back(r);
    }
    write_svg(out_dir / "true_density.svg",
              "8 Gaussians of std 0.2 on a ring of radius 2 (dashed: 2 std, 86% of a component)", mixture,
              {{"the density", nullptr},
               {std::to_string(points) + " i.i.d. points: SW2 " + fixed(distance(iid)) + ", std " +
                    fixed(truth.stddev),
                &iid}});

    std::printf("gmk sample_2d: %zu points from 8 Gaussians (std 0.2) on a ring of radius 2, exact denoiser\n\n",
                points);
    std::printf("Sliced Wasserstein-2 (64 directions) to %zu i.i.d. points of the mixture (NFE in brackets)\n",
                points);
    std::printf("%-23s %-4s  %-13s %-13s %-13s %-13s  %s\n", "sampler", "grid", "10 steps", "20 steps", "50 steps",
                "200 steps", "noise floor");
    for (const row& r : rows) {
        std::printf("%-23s %-4s ", r.run->name.c_str(), grid_label(r.run->grid));
        for (std::size_t j = 0; j < counts; ++j) {
            char cell[48];
            std::snprintf(cell, sizeof cell, "%.4f (%zu)", r.sw2[j], r.nfe[j]);
            std::printf(" %-13s", cell);
        }
        std::printf("  %.4f +- %.4f\n", floor_mean, floor_sd);
    }
    std::printf("noise floor: SW2 between two independent i.i.d. samples of %zu points, mean +- sd over %d pairs.\n"
                "SW2 is mostly how many points each component got, which is random for a perfect sampler too:\n"
                "within the floor's spread a sampler cannot be told from exact sampling.\n\n",
                points, floor_pairs);

    // The standard error of an i.i.d. sample's spread: s / sqrt(2 * 2n) (n points, two axes).
    const double se = 0.2 / std::sqrt(4.0 * double(points));
    std::printf("Spread around the nearest component: RMS per axis (truth 0.200 +- %.3f) / %% of points off the\n"
                "ring (farther than 4 std from every mean; truth 0.03%%); an i.i.d. sample: %.3f / %.2f%%\n",
                se, truth.stddev, 100 * truth.off);
    std::printf("%-23s %-4s  %-13s %-13s %-13s %s\n", "sampler", "grid", "10 steps", "20 steps", "50 steps",
                "200 steps");
    int not_converging = 0;
    for (const row& r : rows) {
        std::printf("%-23s %-4s ", r.run->name.c_str(), grid_label(r.run->grid));
        for (std::size_t j = 0; j < counts; ++j) {
            char cell[48];
            std::snprintf(cell, sizeof cell, "%.3f/%.2f%%", r.spread[j].stddev, 100 * r.spread[j].off);
            std::printf(j + 1 < counts ? " %-13s" : " %s", cell);
        }
        // Off the data at 200 steps (std off by more than 2%, or 0.2% of the points off the ring), and
        // then: still converging (the std's error at least ~halved since 50 steps) or not.
        const double err50 = std::abs(r.spread[counts - 2].stddev - 0.2);
        const double err200 = std::abs(r.spread[counts - 1].stddev - 0.2);
        const bool off = err200 > 0.02 * 0.2 || r.spread[counts - 1].off > 0.002;
        const bool converging = err200 < 0.6 * err50;
        not_converging += off && !converging;
        std::printf("%s\n", !off ? "" : converging ? "   <- still converging at 200 steps" : "   <- NOT converging");
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\ngrids: %s;\n       %s;\n       %s\n", grid_description(grid_kind::vp),
                grid_description(grid_kind::ve), grid_description(grid_kind::flow));
    std::printf("%zu samplers, %d not converging; SVGs (10, 20, 50 steps each, and true_density.svg) in "
                "%s; %.2f s\n",
                rows.size(), not_converging, out_dir.string().c_str(), seconds);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "sample_2d: %s\n", e.what());
    return 1;
}
