#!/usr/bin/env python3
"""Runs gmk's benchmarks and prints one Markdown table of throughputs and ratios.

    python3 bench/report.py --build-dir build [--filter REGEX] [--min-time S] [--json out.json]
                            [--peers-python PY] [--readme README.md] [--full-table FILE.md]
                            [--plot FILE.png] [--plot-python PY]
                            [-- <more Google Benchmark flags, e.g. --benchmark_repetitions=5>]

Every gmk_bench_* executable in <build-dir>/bench is run with --benchmark_format=json and the
results are merged. gmk_bench_machine (this machine's limits: FMA peak, triad bandwidth) runs
first and always in full, so every limit is measured in the same run as the kernels: absolute
times drift on a shared machine, ratios to limits measured minutes apart hold.

A benchmark's label holds key=value pairs, separated by spaces or commas (other words are free
text). The report reads:
    limit=<benchmark name>   "of limit": this row's throughput / the limit row's throughput,
                             in the first rate counter both have (or the one named by metric=)
    limit=none               no limit applies
    peer=<benchmark name>    "vs peer": the peer's time / this row's time (> 1: we are faster);
                             may repeat
    metric=<counter name>    the counter shown as throughput and used for "of limit"
Rate counters understood, in order of preference: FLOP/s, bytes/s, items/s (and Google
Benchmark's bytes_per_second / items_per_second).

Peers. With --peers-python (an interpreter with torch, k-diffusion, diffusers, torchsde, numpy,
scipy and bottleneck), the scripts of bench/peers/ run right after the gmk benchmarks, in the
same session: PyTorch, NumPy, SciPy, bottleneck, k-diffusion and diffusers on the same sizes,
one thread. Each prints lines "<peers/name> <seconds> s <rate> <unit>"; PEERS below says which
peer rows compute what a gmk row computes, and each such gmk row gets "peer time / gmk time"
(> 1: gmk is faster) in its "vs peer" column. A peers script that fails (a module missing) is
reported and its rows show "not run"; the gmk rows are unaffected.

Outputs besides the full table on stdout:
    --readme FILE      replaces the text between the lines <!-- bench-table --> and
                       <!-- /bench-table --> of FILE by the summary table: the rows of SUMMARY
                       below (one or two per kernel family and the machine limits), each with
                       its fraction of its limit and its speed-up over each of its peers
    --full-table FILE  a Markdown page: the summary, the full table, the peers' own rows
    --plot FILE.png    a bar chart of the summary rows (fraction of limit; speed-up over each
                       peer), drawn by bench/plot_report.py with matplotlib under --plot-python
                       (default: the --peers-python interpreter, else this one)

The script itself needs the standard library only. Exit status: 0 on success, 1 when a benchmark executable failed, 2 when
there is nothing to run.
"""

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys

LIMIT_EXECUTABLE = "gmk_bench_machine"

# Rate counters in order of preference, with the unit each is shown in.
METRICS = [
    ("FLOP/s", "FLOP/s"),
    ("bytes/s", "B/s"),
    ("items/s", " items/s"),
    ("bytes_per_second", "B/s"),
    ("items_per_second", " items/s"),
]
METRIC_UNITS = dict(METRICS)

# Parts Google Benchmark appends to a name for how it was run, not what it runs.
RUN_SUFFIX = re.compile(
    r"/(?:min_time|min_warmup_time|iterations|repeats):[^/]*"
    r"|/(?:real_time|manual_time|process_time)(?=/|$)")

TIME_SCALE = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}

HERE = os.path.dirname(os.path.abspath(__file__))

# The peers scripts --peers-python runs, in this order, with their arguments. Each prints one line
# per row: "<peers/name> <seconds per call> s <rate> <unit>" (other lines are comments).
PEER_SCRIPTS = [
    ("window.py", []),      # bottleneck.move_max, scipy.ndimage.maximum_filter1d: n = 10^7 float32
    ("noise.py", []),       # torch.randn / rand (CPU), numpy standard_normal: 2^20 elements
    ("samplers.py", []),    # k-diffusion samplers, diffusers schedulers: 1x4x128x128 float32 steps
    ("attention.py", []),   # torch scaled_dot_product_attention: gmk_bench_attention's shapes
    ("discrete.py", []),    # the LLaDA / Dream step on [1, 256, 126464] float32 logits
]

# Which peer computes what a gmk row computes, on the same size, one thread each: gmk row ->
# [(peer row, short name)]. A peer row named peers/... comes from PEER_SCRIPTS; any other is a
# gmk_bench row (the naive Eigen attention). Notes on what differs are in the peers scripts.
PEERS = {}
for _k in (3, 16, 64, 256, 1024, 4096):
    PEERS["window/sliding_max_f32/%d" % _k] = [
        ("peers/bottleneck_move_max_f32/%d" % _k, "bottleneck"),
        ("peers/scipy_maximum_filter1d_f32/%d" % _k, "SciPy")]
PEERS.update({
    "random/randn_f32_philox/1048576": [("peers/torch_randn_f32_cpu", "torch.randn"),
                                        ("peers/numpy_standard_normal_f32", "NumPy")],
    "random/randn_f64_philox/1048576": [("peers/torch_randn_f64_cpu", "torch.randn"),
                                        ("peers/numpy_standard_normal_f64", "NumPy")],
    "random/rand_f32_philox/1048576": [("peers/torch_rand_f32_cpu", "torch.rand")],
    # The same numbers as torch's generator, bit for bit.
    "random/randn_f32_torch_cpu/1048576": [("peers/torch_randn_f32_cpu", "torch.randn")],
    "random/randn_f64_torch_cpu/1048576": [("peers/torch_randn_f64_cpu", "torch.randn")],
    # k-diffusion's sample_euler draws (and discards) randn_like every step even without churn.
    "samplers/euler_step_f32": [("peers/kdiffusion_euler_step_f32", "k-diffusion"),
                                ("peers/diffusers_euler_step_f32", "diffusers")],
    "samplers/euler_churn_step_f32": [("peers/kdiffusion_euler_churn_step_f32", "k-diffusion")],
    "samplers/euler_ancestral_step_f32": [("peers/kdiffusion_euler_ancestral_step_f32", "k-diffusion")],
    "samplers/heun_step_f32": [("peers/kdiffusion_heun_step_f32", "k-diffusion")],
    "samplers/heun_eval_f32": [("peers/kdiffusion_heun_eval_f32", "k-diffusion")],
    "samplers/dpmpp_2m_step_f32": [("peers/kdiffusion_dpmpp_2m_step_f32", "k-diffusion")],
    "samplers/dpmpp_2m_sde_step_f32": [
        ("peers/kdiffusion_dpmpp_2m_sde_step_f32", "k-diffusion"),
        ("peers/kdiffusion_dpmpp_2m_sde_brownian_step_f32", "k-diffusion, Brownian tree")],
    "samplers/ddim_step_f32": [("peers/diffusers_ddim_step_f32", "diffusers")],
    # gmk's statistics of one step (argmax or a draw, confidence) against the references' whole
    # per-step math between two network calls.
    "discrete/token_stats/T0/threads:1": [("peers/torch_discrete_f32/llada_step_T0", "LLaDA step"),
                                          ("peers/torch_discrete_f32/dream_step_T0", "Dream step"),
                                          ("peers/torch_discrete_f32/torch_softmax_only", "torch.softmax")],
    "discrete/token_stats/T1/threads:1": [("peers/torch_discrete_f32/llada_step_T1", "LLaDA step")],
    "discrete/token_stats/T0.2_topp0.95/threads:1": [
        ("peers/torch_discrete_f32/dream_step_T0.2_topp0.95", "Dream step")],
})
for _seq in (1024, 4096):
    for _d in (64, 128):
        for _c in ("", "_causal"):
            _tag = "s%d_d%d%s" % (_seq, _d, _c)
            PEERS["attention/flash_f32/%s/threads:1" % _tag] = [
                ("attention/naive_eigen_f32/" + _tag, "naive Eigen"),
                ("peers/torch_sdpa_f32/" + _tag, "torch SDPA")]
for _tag in ("decode_h32kv8_k4096_d128", "decode_h1_k32768_d128", "decode_h32kv8_k32768_d128"):
    PEERS["attention/flash_f32/%s/threads:1" % _tag] = [
        ("attention/naive_eigen_f32/" + _tag, "naive Eigen"),
        ("peers/torch_sdpa_f32/" + _tag, "torch SDPA")]

# The summary table (--readme, --full-table, --plot): the machine's limits, then one or two rows
# per kernel family, (family, gmk row, what it runs). Its peers are PEERS[gmk row].
SUMMARY_LIMITS = [
    ("machine/fma_peak_f32", "fp32 FMA peak, one core"),
    ("machine/triad_L2", "triad a = b + s c, L2"),
    ("machine/triad_DRAM", "triad a = b + s c, DRAM"),
    ("machine/read_DRAM", "read stream, DRAM"),
]
SUMMARY = [
    ("sliding max", "window/sliding_max_f32/16", "n = 10^7 float, k = 16"),
    ("sliding max", "window/sliding_max_f32/1024", "n = 10^7 float, k = 1024"),
    ("normal noise", "random/randn_f32_philox/1048576", "2^20 float, Philox"),
    ("normal noise", "random/randn_f32_torch_cpu/1048576", "2^20 float, torch.randn's numbers"),
    ("sampler step", "samplers/dpmpp_2m_step_f32", "DPM-Solver++(2M), 1x4x128x128 float"),
    ("sampler step", "samplers/dpmpp_2m_sde_step_f32", "DPM-Solver++(2M) SDE, 1x4x128x128 float"),
    ("attention", "attention/flash_f32/s4096_d128_causal/threads:1", "prefill, seq 4096, d 128, causal"),
    ("attention", "attention/flash_f32/decode_h32kv8_k4096_d128/threads:1", "decode, 32/8 heads, 4096 keys"),
    ("masked sampler", "discrete/token_stats/T0/threads:1", "one step, 256 x 126464 logits, T = 0"),
    ("masked sampler", "discrete/token_stats/T1/threads:1", "one step, 256 x 126464 logits, T = 1"),
]

README_BEGIN = "<!-- bench-table -->"
README_END = "<!-- /bench-table -->"


def fail(message, status=2):
    print("report.py: error: " + message, file=sys.stderr)
    sys.exit(status)


def canonical_name(name):
    """The benchmark's name without the run-configuration parts (/min_time:0.200, ...)."""
    return RUN_SUFFIX.sub("", name)


def parse_label(label):
    """Label -> {key: [values]} for its key=value words."""
    keys = {}
    for word in re.split(r"[\s,]+", label or ""):
        if "=" in word:
            key, value = word.split("=", 1)
            if key:
                keys.setdefault(key, []).append(value)
    return keys


def find_executables(build_dir):
    bench_dir = os.path.join(build_dir, "bench")
    if not os.path.isdir(bench_dir):
        fail("no directory %s: configure and build with -DGMK_BUILD_BENCHMARKS=ON first" % bench_dir)
    found = []
    for entry in sorted(os.listdir(bench_dir)):
        path = os.path.join(bench_dir, entry)
        stem, ext = os.path.splitext(entry)
        if (entry.startswith("gmk_bench_") and ext in ("", ".exe") and os.path.isfile(path)
                and os.access(path, os.X_OK)):
            found.append((stem, path))
    if not found:
        fail("no gmk_bench_* executables in %s: build the benchmarks first "
             "(cmake --build %s)" % (bench_dir, build_dir))
    # The limits first: they head the table.
    found.sort(key=lambda e: (e[0] != LIMIT_EXECUTABLE, e[0]))
    return found


def min_time_flag(path, seconds):
    """--benchmark_min_time in the spelling this binary's Google Benchmark accepts: a plain number
    of seconds up to 1.7, "<float>s" (or "<integer>x") from 1.8."""
    try:
        help_text = subprocess.run([path, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   universal_newlines=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        help_text = ""
    suffix = "s" if re.search(r"benchmark_min_time=[^\]\n]*<float>s", help_text) else ""
    return "--benchmark_min_time=%g%s" % (seconds, suffix)


def run_executable(stem, path, args):
    """Runs one executable; returns (context, entries) or raises RuntimeError."""
    command = [path, "--benchmark_format=json"]
    if args.filter is not None and stem != LIMIT_EXECUTABLE:
        command.append("--benchmark_filter=" + args.filter)
    command.extend(args.benchmark_flags)
    env = dict(os.environ)
    if args.min_time is not None:
        command.append(min_time_flag(path, args.min_time))
        # Benchmarks that set their own MinTime ignore the flag; gmk's read this variable.
        env["GMK_BENCH_MIN_TIME"] = repr(args.min_time)
    print("running %s" % " ".join(command), file=sys.stderr)
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError("%s exited with status %d:\n%s" % (stem, proc.returncode, proc.stderr.strip()))
    if not proc.stdout.strip():  # nothing matched the filter
        print("report.py: %s: no benchmark matched" % stem, file=sys.stderr)
        return None, []
    try:
        data = json.loads(proc.stdout)
    except ValueError as e:
        raise RuntimeError("%s did not print JSON (%s):\n%s" % (stem, e, proc.stderr.strip()))
    entries = data.get("benchmarks", [])
    for entry in entries:
        entry["executable"] = stem
    return data.get("context", {}), entries


def combine(entries):
    """One result per canonical name: the median over repetitions, or the median aggregate when
    only aggregates were reported."""
    groups = {}
    order = []
    for entry in entries:
        name = canonical_name(entry.get("run_name", entry["name"]))
        if name not in groups:
            groups[name] = []
            order.append(name)
        groups[name].append(entry)
    results = []
    for name in order:
        group = groups[name]
        runs = [e for e in group if e.get("run_type", "iteration") == "iteration"]
        if not runs:
            runs = ([e for e in group if e.get("aggregate_name") == "median"]
                    or [e for e in group if e.get("aggregate_name") == "mean"] or group[:1])
        first = runs[0]
        errors = [e for e in runs if e.get("error_occurred")]
        result = {
            "name": name,
            "executable": first["executable"],
            "label": first.get("label", ""),
            "error": errors[0].get("error_message", "error") if errors else None,
        }
        if not errors:
            # The time a benchmark's rates are computed from: real (or manual) time when it asks
            # for it, CPU time otherwise.
            raw = first["name"]
            key = "real_time" if ("/real_time" in raw or "/manual_time" in raw) else "cpu_time"
            scale = TIME_SCALE.get(first.get("time_unit", "ns"), 1e-9)
            result["time_s"] = statistics.median(e[key] * scale for e in runs)
            result["time_kind"] = key
            result["iterations"] = int(statistics.median(e.get("iterations", 0) for e in runs))
            result["rates"] = {m: statistics.median(float(e[m]) for e in runs)
                               for m, _ in METRICS if all(m in e for e in runs)}
        results.append(result)
    return results


def three_digits(value):
    """value to three significant digits, keeping trailing zeros: 2.00, 17.3, 712, 4096."""
    if value == 0 or not math.isfinite(value):
        return "%g" % value
    decimals = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return "%.*f" % (decimals, value)


def human_rate(value, metric):
    unit = METRIC_UNITS[metric]
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return "%s %s%s" % (three_digits(value / factor), prefix, unit)
    return "%s %s" % (three_digits(value), unit.lstrip())


def human_time(seconds):
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= factor:
            return "%s %s" % (three_digits(seconds / factor), unit)
    return "%s ns" % three_digits(seconds / 1e-9)


def primary_metric(result, keys):
    rates = result.get("rates", {})
    for wanted in keys.get("metric", []):
        if wanted in rates:
            return wanted
    for metric, _ in METRICS:
        if metric in rates:
            return metric
    return None


def build_rows(results, peer_results=None):
    """The table rows of the gmk results; peer_results (from run_peers) adds the ratios to the
    external peers of PEERS to the "vs peer" column."""
    by_name = {r["name"]: r for r in results}
    peer_results = peer_results or {}
    rows = []
    for r in results:
        keys = parse_label(r["label"])
        row = {"benchmark": r["name"], "time": "", "throughput": "", "of_limit": "", "limit": "",
               "vs_peer": "", "label": r["label"]}
        rows.append(row)
        if r["error"] is not None:
            row["throughput"] = "error: " + r["error"]
            continue
        row["time"] = human_time(r["time_s"])
        row["time_s"] = r["time_s"]
        metric = primary_metric(r, keys)
        if metric is not None:
            row["throughput"] = human_rate(r["rates"][metric], metric)
            row["metric"] = metric
            row["value"] = r["rates"][metric]

        limits = keys.get("limit", [])
        if r["executable"] == LIMIT_EXECUTABLE and not limits:
            row["of_limit"], row["limit"], row["fraction"] = "1.00", "(is a limit)", 1.0
        elif limits and limits[0] != "none":
            limit_name = canonical_name(limits[0])
            row["limit"] = limit_name
            lim = by_name.get(limit_name)
            if lim is None:
                row["of_limit"] = "not run"
            elif lim["error"] is not None:
                row["of_limit"] = "limit failed"
            else:
                # The shown metric if the limit has it, else the first counter both have.
                common = [m for m in ([metric] if metric else []) + [m for m, _ in METRICS]
                          if m in r["rates"] and m in lim["rates"] and lim["rates"][m] > 0]
                if common:
                    m = common[0]
                    row["fraction"] = r["rates"][m] / lim["rates"][m]
                    row["of_limit"] = "%.2f" % row["fraction"]
                    if m != metric:
                        row["of_limit"] += " (%s)" % m
                else:
                    row["of_limit"] = "no common counter"
        elif limits:
            row["limit"] = "none"

        ratios = []
        for peer_name in keys.get("peer", []):
            peer_name = canonical_name(peer_name)
            peer = by_name.get(peer_name)
            if peer is None:
                ratios.append("%s not run" % peer_name)
            elif peer["error"] is not None:
                ratios.append("%s failed" % peer_name)
            else:
                ratio = peer["time_s"] / r["time_s"]
                row.setdefault("peer_ratios", {})[peer_name] = ratio
                ratios.append("%.2fx %s" % (ratio, peer_name))
        for peer_name, _ in PEERS.get(r["name"], []):
            if peer_name in row.get("peer_ratios", {}) or peer_name not in peer_results:
                continue
            ratio = peer_results[peer_name]["time_s"] / r["time_s"]
            row.setdefault("peer_ratios", {})[peer_name] = ratio
            ratios.append("%.2fx %s" % (ratio, peer_name))
        row["vs_peer"] = "; ".join(ratios)
    return rows


# ---- peers -----------------------------------------------------------------------------------

PEER_LINE = re.compile(r"^(peers/\S+)\s+([0-9.eE+-]+) s\s+([0-9.eE+-]+) (FLOP/s|bytes/s|items/s)")

PEER_VERSIONS = r"""
import importlib.metadata as md, platform
names = ["torch", "k-diffusion", "diffusers", "torchsde", "numpy", "scipy", "Bottleneck"]
def v(n):
    try:
        return md.version(n)
    except md.PackageNotFoundError:
        return None
print("Python %s; " % platform.python_version() + ", ".join("%s %s" % (n.lower(), v(n)) for n in names if v(n)))
"""


def run_peers(python):
    """Runs PEER_SCRIPTS under `python`; returns ({peer row: result}, [comment lines], [failures])."""
    found, comments, failures = {}, [], []
    try:
        versions = subprocess.run([python, "-c", PEER_VERSIONS], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        if versions.returncode == 0 and versions.stdout.strip():
            comments.append(versions.stdout.strip())
    except (OSError, subprocess.SubprocessError) as e:
        failures.append("%s: %s" % (python, e))
        print("report.py: cannot run %s: %s" % (python, e), file=sys.stderr)
        return found, comments, failures
    for script, extra in PEER_SCRIPTS:
        command = [python, os.path.join(HERE, "peers", script)] + extra
        print("running %s" % " ".join(command), file=sys.stderr)
        try:
            proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True)
        except OSError as e:
            proc = None
            error = str(e)
        if proc is None or proc.returncode != 0:
            if proc is not None:
                tail = proc.stderr.strip().splitlines()[-1:] or ["exit status %d" % proc.returncode]
                error = tail[0]
            failures.append("peers/%s: %s" % (script, error))
            print("report.py: peers/%s failed: %s" % (script, error), file=sys.stderr)
        for line in (proc.stdout.splitlines() if proc is not None else []):
            m = PEER_LINE.match(line)
            if m:
                found[m.group(1)] = {"name": m.group(1), "script": script, "time_s": float(m.group(2)),
                                     "rate": float(m.group(3)), "metric": m.group(4)}
            elif line.startswith("#"):
                comments.append(line.lstrip("# ").strip())
    return found, comments, failures


def peer_figure(name, by_name, peer_results):
    """(time in seconds, None) of a peer row, gmk_bench or peers script, or (None, why)."""
    if name in peer_results:
        return peer_results[name]["time_s"], None
    r = by_name.get(name)
    if r is None:
        return None, "not run"
    if r["error"] is not None:
        return None, "failed"
    return r["time_s"], None


# ---- the summary -----------------------------------------------------------------------------

def summary_rows(rows, results, peer_results):
    """The SUMMARY_LIMITS and SUMMARY rows: dicts with family, case, benchmark, time, throughput,
    of_limit, fraction (or absent), limit and peers [(short name, peer row, ratio or None,
    peer time or None)]."""
    by_row = {row["benchmark"]: row for row in rows}
    by_name = {r["name"]: r for r in results}
    out = []
    for name, case in SUMMARY_LIMITS:
        row = by_row.get(name)
        if row is None:
            continue
        out.append({"family": "machine limit", "case": case, "benchmark": name, "time": row["time"],
                    "throughput": row["throughput"], "of_limit": "", "limit": "", "peers": [],
                    "is_limit": True})
    for family, name, case in SUMMARY:
        row = by_row.get(name)
        if row is None:
            continue
        entry = {"family": family, "case": case, "benchmark": name, "time": row["time"],
                 "throughput": row["throughput"], "of_limit": row["of_limit"],
                 "limit": row["limit"], "peers": [], "is_limit": False}
        if "fraction" in row:
            entry["fraction"] = row["fraction"]
        for peer_name, short in PEERS.get(name, []):
            seconds, why = peer_figure(peer_name, by_name, peer_results)
            ratio = seconds / row["time_s"] if seconds is not None and "time_s" in row else None
            entry["peers"].append({"short": short, "name": peer_name, "ratio": ratio,
                                   "time_s": seconds, "why": why})
        out.append(entry)
    return out


def speedup_text(ratio):
    return ("%.0fx" % ratio) if ratio >= 100 else ("%.1fx" % ratio) if ratio >= 10 else ("%.2fx" % ratio)


def summary_markdown(summary):
    columns = [("kernel", False), ("case", False), ("gmk time", True), ("throughput", True),
               ("of limit", True), ("limit", False), ("vs peers: speed-up (peer's time)", False)]
    cells = []
    for e in summary:
        if e["is_limit"]:
            peers, of_limit, limit = "", "1.00", "(is a limit: %s)" % e["benchmark"]
        else:
            parts = []
            for p in e["peers"]:
                if p["ratio"] is None:
                    parts.append("%s: %s" % (p["short"], p["why"] or "not run"))
                else:
                    parts.append("%s %s (%s)" % (speedup_text(p["ratio"]), p["short"],
                                                 human_time(p["time_s"])))
            peers = "; ".join(parts)
            of_limit = e["of_limit"] or "-"
            limit = e["limit"] if e["limit"] and e["limit"] != "none" else "none measured"
        cells.append([e["family"], e["case"], e["time"], e["throughput"], of_limit, limit, peers])
    titles = [c for c, _ in columns]
    widths = [max(len(line[i]) for line in [titles] + cells) for i in range(len(columns))]

    def line(values):
        return "| " + " | ".join(v.rjust(w) if right else v.ljust(w)
                                 for v, w, (_, right) in zip(values, widths, columns)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if right else ("-" * (w + 2))
                          for w, (_, right) in zip(widths, columns)) + "|"
    return "\n".join([line(titles), rule] + [line(c) for c in cells])


def source_revision():
    """`git describe --always --dirty` of the repository holding this script, or None."""
    try:
        proc = subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None


def summary_block(summary, header, peer_comments, command, have_peers):
    lines = []
    if header:
        lines += [header + ".", ""]
    lines.append(summary_markdown(summary))
    lines.append("")
    revision = source_revision()
    lines.append("Generated by `%s`%s." % (command, " at " + revision if revision else ""))
    if have_peers and peer_comments:
        lines.append("Peers, one thread, same run: " + peer_comments[0] + ".")
    elif not have_peers:
        lines.append("Peers not run (no --peers-python): only the gmk_bench peers are shown.")
    return "\n".join(lines)


def replace_between_markers(path, block):
    with open(path) as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        fail("%s has no %s ... %s pair of lines to write the table between" % (path, README_BEGIN, README_END))
    begin += len(README_BEGIN)
    text = text[:begin] + "\n" + block.rstrip("\n") + "\n" + text[end:]
    with open(path, "w") as f:
        f.write(text)


def peers_markdown(peer_results):
    lines = ["| peer row | script | time | throughput |", "|---|---|---:|---:|"]
    for name, p in sorted(peer_results.items(), key=lambda kv: (kv[1]["script"], kv[0])):
        lines.append("| %s | bench/peers/%s | %s | %s |" % (name, p["script"], human_time(p["time_s"]),
                                                            human_rate(p["rate"], p["metric"])))
    return "\n".join(lines)


def write_full_table(path, block, rows, peer_results, peer_comments):
    parts = ["# gmk benchmark report", "",
             "Written by `bench/report.py` (see the README's Benchmarks section). The summary, then "
             "every gmk_bench row (\"vs peer\": the peer's time / gmk's time, > 1: gmk is faster; the "
             "peers/... rows are the Python peers of `bench/peers/`, one thread, timed in the same run), "
             "then the peers' own rows.", "", "## Summary", "", block, "", "## Every gmk_bench row", "",
             markdown_table(rows), ""]
    if peer_results:
        parts += ["## The peers' rows", ""]
        parts += ["- " + c for c in peer_comments] + [""]
        parts += [peers_markdown(peer_results), ""]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(parts))


def write_plot(path, python, summary, title):
    """Writes the summary as a bar chart through bench/plot_report.py under `python`; returns an
    error text or None."""
    import tempfile
    data = {"title": title,
            "rows": [{"family": e["family"], "case": e["case"], "fraction": e.get("fraction"),
                     "limit": e["limit"],
                      "peers": [{"name": p["short"], "ratio": p["ratio"]} for p in e["peers"]]}
                     for e in summary if not e["is_limit"]]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
        data_path = f.name
    try:
        proc = subprocess.run([python, os.path.join(HERE, "plot_report.py"), data_path, path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    except OSError as e:
        return str(e)
    finally:
        os.unlink(data_path)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
    return None


COLUMNS = [("benchmark", "benchmark"), ("time", "time"), ("throughput", "throughput"),
           ("of_limit", "of limit"), ("limit", "limit"), ("vs_peer", "vs peer")]
RIGHT_ALIGNED = {"time", "throughput", "of_limit"}


def markdown_table(rows):
    cells = [[title for _, title in COLUMNS]] + [[row[key] for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]

    def line(values):
        out = []
        for (key, _), value, width in zip(COLUMNS, values, widths):
            out.append(value.rjust(width) if key in RIGHT_ALIGNED else value.ljust(width))
        return "| " + " | ".join(out) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if key in RIGHT_ALIGNED else ("-" * (w + 2))
                          for (key, _), w in zip(COLUMNS, widths)) + "|"
    return "\n".join([line(cells[0]), rule] + [line(c) for c in cells[1:]])


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def short_context(context):
    """CPU model, CPU count and day of the run, for the plot's title."""
    parts = [p for p in [cpu_model()] if p]
    context = context or {}
    if "num_cpus" in context:
        parts.append("%d CPUs" % context["num_cpus"])
    if "date" in context:
        parts.append(context["date"][:10])
    return ", ".join(parts)


def load_average():
    """The one-minute load average, or None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def describe_context(context, loads=()):
    if not context:
        return ""
    parts = []
    model = cpu_model()
    if model:
        parts.append(model)
    if "num_cpus" in context and "mhz_per_cpu" in context:
        parts.append("%d CPUs at %d MHz" % (context["num_cpus"], context["mhz_per_cpu"]))
    caches = context.get("caches", [])
    if caches:
        named = []
        for c in caches:
            kind = {"Data": "d", "Instruction": "i", "Unified": ""}.get(c.get("type"), "")
            size = c.get("size", 0)
            text = "%d MiB" % (size >> 20) if size >= (1 << 20) else "%d KiB" % (size >> 10)
            named.append("L%d%s %s" % (c.get("level", 0), kind, text))
        parts.append(", ".join(named))
    if context.get("cpu_scaling_enabled"):
        parts.append("CPU frequency scaling on")
    if context.get("library_build_type") == "debug":
        parts.append("Google Benchmark library built as debug (harness overhead only)")
    if "date" in context:
        parts.append(context["date"])
    loads = [l for l in loads if l is not None]
    if loads:
        shown = []
        for text in ("%.1f" % l for l in loads):
            if text not in shown:
                shown.append(text)
        parts.append("load average %s over the run%s" % (
            " to ".join(shown),
            " (other processes shared the cores)" if max(loads) >= 1.5 else ""))
    return "Machine: " + "; ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True, help="CMake build directory")
    parser.add_argument("--filter", help="regex of benchmarks to run (the machine limits always run)")
    parser.add_argument("--min-time", type=float, help="minimum seconds per benchmark")
    parser.add_argument("--json", help="also write the merged results and the table rows here")
    parser.add_argument("--peers-python", metavar="PY",
                        help="run the bench/peers scripts with this interpreter after the benchmarks")
    parser.add_argument("--readme", metavar="FILE",
                        help="write the summary table between %s and %s in FILE" % (README_BEGIN, README_END))
    parser.add_argument("--full-table", metavar="FILE", help="write the summary and full tables here (Markdown)")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the summary as a bar chart (matplotlib)")
    parser.add_argument("--plot-python", metavar="PY",
                        help="interpreter with matplotlib for --plot (default: --peers-python, else this one)")
    parser.add_argument("benchmark_flags", nargs="*", metavar="-- FLAG",
                        help="further flags for every executable (after --), "
                             "e.g. --benchmark_repetitions=5: the table shows medians")
    args = parser.parse_args()
    if args.min_time is not None and not args.min_time > 0:
        fail("--min-time must be positive, not %g" % args.min_time)
    if args.filter is not None:
        try:
            re.compile(args.filter)
        except re.error as e:
            fail("--filter %r is not a regular expression: %s" % (args.filter, e))

    executables = find_executables(args.build_dir)
    load_start = load_average()
    context, entries, failures = None, [], []
    for stem, path in executables:
        try:
            ctx, found = run_executable(stem, path, args)
        except (OSError, RuntimeError) as e:
            failures.append(str(e))
            print("report.py: " + str(e), file=sys.stderr)
            continue
        if context is None and ctx:
            context = ctx
        entries.extend(found)

    if not entries:
        fail("no benchmark results (filter %r matched nothing?)" % args.filter
             if not failures else "every benchmark executable failed", 1 if failures else 2)

    peer_results, peer_comments, peer_failures = {}, [], []
    if args.peers_python:
        peer_results, peer_comments, peer_failures = run_peers(args.peers_python)

    results = combine(entries)
    rows = build_rows(results, peer_results)
    header = describe_context(context, (load_start, load_average()))
    if header:
        print(header)
        print()
    print(markdown_table(rows))

    summary = summary_rows(rows, results, peer_results)
    if args.readme or args.full_table:
        command = ["python3", "bench/report.py", "--build-dir", "<build>"]
        if args.min_time is not None:
            command += ["--min-time", "%g" % args.min_time]
        if args.peers_python:
            command += ["--peers-python", "<python>"]
        block = summary_block(summary, header, peer_comments, " ".join(command), bool(args.peers_python))
        if args.readme:
            replace_between_markers(args.readme, block)
            print("report.py: wrote the summary table into %s" % args.readme, file=sys.stderr)
        if args.full_table:
            write_full_table(args.full_table, block, rows, peer_results, peer_comments)
            print("report.py: wrote %s" % args.full_table, file=sys.stderr)
    if args.plot:
        title = "gmk benchmarks: " + short_context(context)
        error = write_plot(args.plot, args.plot_python or args.peers_python or sys.executable, summary, title)
        if error:
            failures.append("plot: " + error)
            print("report.py: --plot failed: %s" % error, file=sys.stderr)
        else:
            print("report.py: wrote %s" % args.plot, file=sys.stderr)

    if args.json:
        with open(args.json, "w") as out:
            json.dump({"context": context, "executables": [s for s, _ in executables],
                       "benchmarks": entries, "rows": rows, "peers": peer_results,
                       "peer_comments": peer_comments, "summary": summary}, out, indent=2)
            out.write("\n")
    failures += peer_failures
    if failures:
        print("report.py: %d failure(s): %s" % (len(failures), "; ".join(f.splitlines()[0] for f in failures)),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
