#!/usr/bin/env python3
"""Runs gmk's benchmarks and prints one Markdown table of throughputs and ratios.

    python3 bench/report.py --build-dir build [--filter REGEX] [--min-time S] [--json out.json]
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

Standard library only. Exit status: 0 on success, 1 when a benchmark executable failed, 2 when
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


def build_rows(results):
    by_name = {r["name"]: r for r in results}
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
        row["vs_peer"] = "; ".join(ratios)
    return rows


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


def describe_context(context):
    if not context:
        return ""
    parts = []
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
    return "Machine: " + "; ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True, help="CMake build directory")
    parser.add_argument("--filter", help="regex of benchmarks to run (the machine limits always run)")
    parser.add_argument("--min-time", type=float, help="minimum seconds per benchmark")
    parser.add_argument("--json", help="also write the merged results and the table rows here")
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

    results = combine(entries)
    rows = build_rows(results)
    header = describe_context(context)
    if header:
        print(header)
        print()
    print(markdown_table(rows))

    if args.json:
        with open(args.json, "w") as out:
            json.dump({"context": context, "executables": [s for s, _ in executables],
                       "benchmarks": entries, "rows": rows}, out, indent=2)
            out.write("\n")
    if failures:
        print("report.py: %d benchmark executable(s) failed" % len(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
