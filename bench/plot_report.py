#!/usr/bin/env python3
"""Draws bench/report.py's summary as one PNG: two horizontal bar charts, one above the other: each
kernel's fraction of its machine limit (measured in the same run) and its speed-up over each of
its peers (peer time / gmk time, log scale).

    python bench/plot_report.py data.json out.png

report.py --plot writes data.json and runs this script under an interpreter with matplotlib
(--plot-python, or --peers-python); it is not meant to be run by hand. data.json:
    {"title": str, "rows": [{"family": str, "case": str, "fraction": float or null,
                             "limit": str, "peers": [{"name": str, "ratio": float or null}]}]}
"""
import json
import sys


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        data = json.load(f)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["rows"]
    frac_rows = [r for r in rows if r.get("fraction") is not None]
    peer_bars = [(r, p["name"], p["ratio"]) for r in rows for p in r["peers"] if p.get("ratio") is not None]
    families = []
    for r in rows:
        if r["family"] not in families:
            families.append(r["family"])
    palette = plt.get_cmap("tab10")
    colour = {f: palette(i % 10) for i, f in enumerate(families)}

    def speedup(ratio):
        return ("%.0fx" % ratio) if ratio >= 100 else ("%.1fx" % ratio) if ratio >= 10 else ("%.2fx" % ratio)

    # Two panels, one above the other, each bar labelled on the left: the fractions of the limits,
    # then the speed-ups over the peers (one bar per row and peer).
    n_top, n_bottom = max(len(frac_rows), 1), max(len(peer_bars), 1)
    fig, (ax_frac, ax_peer) = plt.subplots(
        2, 1, figsize=(10, 1.6 + 0.27 * (n_top + n_bottom)),
        gridspec_kw={"height_ratios": [n_top + 1.2, n_bottom + 1.2]})

    y = list(range(len(frac_rows)))[::-1]
    values = [r["fraction"] for r in frac_rows]
    ax_frac.barh(y, values, color=[colour[r["family"]] for r in frac_rows], height=0.7)
    for yi, v, r in zip(y, values, frac_rows):
        ax_frac.text(v + 0.015, yi, "%.2f of %s" % (v, r.get("limit", "")), va="center", fontsize=7)
    ax_frac.set_yticks(y)
    ax_frac.set_yticklabels(["%s: %s" % (r["family"], r["case"]) for r in frac_rows], fontsize=8)
    ax_frac.axvline(1.0, color="#444", linewidth=0.8, linestyle="--")
    ax_frac.set_xlim(0, max([1.0] + values) * 1.9)
    ax_frac.set_xlabel("fraction of the machine limit measured in the same run (1 = the limit)", fontsize=8.5)
    ax_frac.tick_params(axis="x", labelsize=8)

    y = list(range(len(peer_bars)))[::-1]
    ratios = [ratio for _, _, ratio in peer_bars]
    ax_peer.barh(y, ratios, color=[colour[r["family"]] for r, _, _ in peer_bars], height=0.7)
    for yi, ratio in zip(y, ratios):
        ax_peer.text(ratio * 1.08, yi, speedup(ratio), va="center", fontsize=7)
    ax_peer.set_yticks(y)
    ax_peer.set_yticklabels(["%s: %s  vs %s" % (r["family"], r["case"], name) for r, name, _ in peer_bars],
                            fontsize=8)
    ax_peer.set_xscale("log")
    if ratios:
        ax_peer.set_xlim(min(0.5, min(ratios) / 1.5), max(ratios) * 4)
    ax_peer.axvline(1.0, color="#444", linewidth=0.8, linestyle="--")
    ax_peer.set_xlabel("speed-up: the peer's time / gmk's time, one thread each, same run (log scale)",
                       fontsize=8.5)
    ax_peer.tick_params(axis="x", labelsize=8)

    fig.suptitle(data.get("title", "gmk benchmarks"), fontsize=9.5)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
