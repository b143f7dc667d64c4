#!/usr/bin/env python3
"""Turns bench/out/<scenario>/*.json (chatrelay-bench --json) and wrk outputs into the markdown
section run-all.sh splices into bench/RESULTS.md, and PNG charts under bench/charts/.

usage: report.py OUT_DIR CHARTS_DIR FACTS_FILE > section.md
"""
import glob
import json
import os
import re
import sys

OUT, CHARTS, FACTS = sys.argv[1], sys.argv[2], sys.argv[3]
TARGET_ORDER = ["mock", "nginx", "litellm", "chatrelay-chat", "chatrelay-openai", "chatrelay-anthropic", "chatrelay"]
TARGET_NAME = {
    "mock": "mock upstream (direct)",
    "nginx": "nginx relay → mock",
    "litellm": "LiteLLM proxy → mock",
    "chatrelay-chat": "ChatRelay /api/v1/chat → mock",
    "chatrelay-openai": "ChatRelay /v1/chat/completions → mock",
    "chatrelay-anthropic": "ChatRelay /v1/messages → mock",
    "chatrelay": "ChatRelay (GET /api/v1/health)",
}


def load(scenario):
    runs = []
    for p in sorted(glob.glob(os.path.join(OUT, scenario, "*.json"))):
        try:
            with open(p) as f:
                j = json.load(f)
        except (OSError, ValueError):
            continue
        parts = j.get("label", "").split("/")
        j["_target"] = parts[1] if len(parts) > 1 else os.path.basename(p).split("-c")[0]
        runs.append(j)
    runs.sort(key=lambda j: (TARGET_ORDER.index(j["_target"]) if j["_target"] in TARGET_ORDER else 99, j.get("concurrency", 0)))
    return runs


def skipped(scenario):
    p = os.path.join(OUT, scenario, "skipped.txt")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [l.strip() for l in f if l.strip()]


def ms(us):
    return f"{us / 1000:.2f}"


def errs(j):
    e = j.get("errors", {})
    return ", ".join(f"{k} {v}" for k, v in sorted(e.items())) if e else "0"


def server_cpu(j):
    v = j.get("server_cpu_s_per_1000")
    return f"{v:.3f}" if isinstance(v, (int, float)) else "–"


def chart_ready():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: F401
        return True
    except ImportError:
        return False


HAVE_MPL = chart_ready()
if HAVE_MPL:
    import matplotlib.pyplot as plt
os.makedirs(CHARTS, exist_ok=True)
charts = []


def skip_lines(scenario):
    s = skipped(scenario)
    if not s:
        return []
    return ["", "Not measured:"] + [f"- {l}" for l in s]


def section_throughput():
    runs = load("throughput")
    lines = ["### 1. Throughput — 20 tokens, no delay, closed loop", ""]
    if not runs:
        return lines + ["(not run)"] + skip_lines("throughput")
    lines += ["| target | C | answers/s | tokens/s | TTFT p50 / p99 ms | total p99 ms | errors | server CPU-s per 1000 answers | harness CPU % | load avg |",
              "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for j in runs:
        lines.append(f"| {TARGET_NAME.get(j['_target'], j['_target'])} | {j['concurrency']} | {j['rps']:.0f} | {j['tokens_per_s']:.0f} | "
                     f"{ms(j['ttft_us']['p50'])} / {ms(j['ttft_us']['p99'])} | {ms(j['total_us']['p99'])} | {errs(j)} | {server_cpu(j)} | "
                     f"{100 * j['harness']['cpu_util']:.0f} | {j.get('loadavg_start', 0):.1f} |")
    if HAVE_MPL:
        fig, ax = plt.subplots(figsize=(7, 4))
        by = {}
        for j in runs:
            by.setdefault(j["_target"], []).append((j["concurrency"], j["rps"]))
        for t, pts in by.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=TARGET_NAME.get(t, t))
        ax.set_xscale("log")
        ax.set_xlabel("concurrent streams (closed loop)")
        ax.set_ylabel("answers/s (20 tokens each)")
        ax.set_title("Throughput vs concurrency")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(CHARTS, "throughput-rps.png"), dpi=110)
        plt.close(fig)
        lines += ["", "![answers/s vs concurrency](charts/throughput-rps.png)"]
    return lines + skip_lines("throughput")


def section_latency():
    runs = load("latency")
    lines = ["### 2. Latency — 20 tokens 20 ms apart, closed loop", ""]
    if not runs:
        return lines + ["(not run)"] + skip_lines("latency")
    base = {j["concurrency"]: j for j in runs if j["_target"] == "mock"}
    lines += ["Stamp delay = harness receipt time minus the mock's send stamp in the token (same CLOCK_MONOTONIC). "
              "Added = the target's figure minus the mock-direct figure at the same C.", "",
              "| target | C | answers/s | TTFT p50 / p99 ms | gap p50 / p99 ms | stamp delay p50 / p99 / max ms | added TTFT p50 ms | added per-token p50 / p99 ms | errors | server CPU-s per 1000 | load avg |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for j in runs:
        b = base.get(j["concurrency"])
        if b and j["_target"] != "mock":
            add_ttft = ms(j["ttft_us"]["p50"] - b["ttft_us"]["p50"])
            add_tok = f"{ms(j['stamp_delay_us']['p50'] - b['stamp_delay_us']['p50'])} / {ms(j['stamp_delay_us']['p99'] - b['stamp_delay_us']['p99'])}"
        else:
            add_ttft, add_tok = "–", "–"
        sd = j["stamp_delay_us"]
        lines.append(f"| {TARGET_NAME.get(j['_target'], j['_target'])} | {j['concurrency']} | {j['rps']:.0f} | "
                     f"{ms(j['ttft_us']['p50'])} / {ms(j['ttft_us']['p99'])} | {ms(j['gap_us']['p50'])} / {ms(j['gap_us']['p99'])} | "
                     f"{ms(sd['p50'])} / {ms(sd['p99'])} / {ms(sd['max'])} | {add_ttft} | {add_tok} | {errs(j)} | {server_cpu(j)} | {j.get('loadavg_start', 0):.1f} |")
    if HAVE_MPL:
        cs = sorted({j["concurrency"] for j in runs})
        fig, axes = plt.subplots(1, len(cs), figsize=(4.2 * len(cs), 3.8), squeeze=False)
        for ax, c in zip(axes[0], cs):
            for j in runs:
                if j["concurrency"] != c or not j["stamp_delay_us"]["percentiles"]:
                    continue
                pts = j["stamp_delay_us"]["percentiles"]
                xs = [min(p[0], 99.99) for p in pts]
                ax.plot([1 / (1 - x / 100.0001) for x in xs], [p[1] / 1000 for p in pts], marker=".", label=TARGET_NAME.get(j["_target"], j["_target"]))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks([1, 2, 10, 100, 1000, 10000])
            ax.set_xticklabels(["0", "50", "90", "99", "99.9", "99.99"])
            ax.set_xlabel("percentile")
            ax.set_ylabel("stamp delay ms")
            ax.set_title(f"per-token delay, C={c}")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(CHARTS, "latency-stamp-delay.png"), dpi=110)
        plt.close(fig)
        fig, axes = plt.subplots(1, len(cs), figsize=(4.2 * len(cs), 3.8), squeeze=False)
        for ax, c in zip(axes[0], cs):
            for j in runs:
                if j["concurrency"] != c or not j["ttft_us"]["percentiles"]:
                    continue
                pts = j["ttft_us"]["percentiles"]
                xs = [min(p[0], 99.99) for p in pts]
                ax.plot([1 / (1 - x / 100.0001) for x in xs], [max(p[1], 1) / 1000 for p in pts], marker=".", label=TARGET_NAME.get(j["_target"], j["_target"]))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks([1, 2, 10, 100, 1000, 10000])
            ax.set_xticklabels(["0", "50", "90", "99", "99.9", "99.99"])
            ax.set_xlabel("percentile")
            ax.set_ylabel("TTFT ms")
            ax.set_title(f"time to first token, C={c}")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(CHARTS, "latency-ttft.png"), dpi=110)
        plt.close(fig)
        lines += ["", "![per-token stamp delay distribution](charts/latency-stamp-delay.png)", "",
                  "![TTFT distribution](charts/latency-ttft.png)"]
    return lines + skip_lines("latency")


def section_hold():
    runs = load("hold")
    lines = ["### 3. Hold — long streams, one token a second", ""]
    if not runs:
        return lines + ["(not run)"] + skip_lines("hold")
    lines += ["Server RSS and fds are summed over the server's processes (for a relay: not the mock); per stream = (value − baseline) / open streams.", "",
              "| target | open streams | server RSS MiB | RSS per stream KiB | fds per stream | harness RSS MiB | errors |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for j in runs:
        for p in j.get("per_stream", []):
            lines.append(f"| {TARGET_NAME.get(j['_target'], j['_target'])} | {p['open_streams']} | {p['server_rss_bytes'] / 2**20:.1f} | "
                         f"{p['server_rss_per_stream_bytes'] / 1024:.2f} | {p['server_fds_per_stream']:.2f} | {p['harness_rss_bytes'] / 2**20:.1f} | {errs(j)} |")
        for n in j.get("notes", []):
            lines.append(f"| {TARGET_NAME.get(j['_target'], j['_target'])} | note: {n} | | | | | |")
    if HAVE_MPL:
        fig, ax = plt.subplots(figsize=(7, 4))
        for j in runs:
            ps = j.get("per_stream", [])
            base = j["snapshots"][0]["servers"] if j.get("snapshots") else []
            b = sum(s["rss_bytes"] for s in base)
            ax.plot([0] + [p["open_streams"] for p in ps], [b / 2**20] + [p["server_rss_bytes"] / 2**20 for p in ps], marker="o",
                    label=TARGET_NAME.get(j["_target"], j["_target"]))
        ax.set_xlabel("open streams")
        ax.set_ylabel("server RSS MiB")
        ax.set_title("Server RSS vs open streams")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(CHARTS, "hold-rss.png"), dpi=110)
        plt.close(fig)
        lines += ["", "![RSS vs open streams](charts/hold-rss.png)"]
    return lines + skip_lines("hold")


def section_disconnect():
    runs = load("disconnect")
    lines = ["### 4. Disconnect storm — all client sockets closed at once", ""]
    if not runs:
        return lines + ["(not run)"] + skip_lines("disconnect")
    lines += ["| target | streams opened | mock active_streams back to baseline ms | server fds back to baseline ms | server RSS open → settled+1 s MiB | errors | notes |",
              "|---|---:|---:|---:|---:|---|---|"]
    for j in runs:
        v = j.get("vanish", {})
        snaps = {s["label"]: s for s in j.get("snapshots", [])}
        opened = [s for s in j.get("snapshots", []) if s["label"].startswith("open_")]
        rss_open = sum(p["rss_bytes"] for p in opened[-1]["servers"]) / 2**20 if opened else 0
        rss_after = sum(p["rss_bytes"] for p in snaps.get("settled_1s", {"servers": []})["servers"]) / 2**20
        lines.append(f"| {TARGET_NAME.get(j['_target'], j['_target'])} | {opened[-1]['open_streams'] if opened else 0} | "
                     f"{v.get('active_streams_settle_ms', float('nan')):.0f} | {v.get('fds_settle_ms', float('nan')):.0f} | "
                     f"{rss_open:.1f} → {rss_after:.1f} | {errs(j)} | {'; '.join(j.get('notes', []))} |")
    return lines + skip_lines("disconnect")


def section_wrk():
    files = sorted(glob.glob(os.path.join(OUT, "wrk", "*.txt")))
    files = [f for f in files if re.search(r"-c\d+\.txt$", f)]
    files.sort(key=lambda f: (TARGET_ORDER.index(os.path.basename(f).rsplit("-c", 1)[0]) if os.path.basename(f).rsplit("-c", 1)[0] in TARGET_ORDER else 99,
                              int(os.path.basename(f).rsplit("-c", 1)[1][:-4])))
    lines = ["### 5. Plain HTTP — wrk, 1 thread", ""]
    if not files:
        return lines + ["(not run)"] + skip_lines("wrk")
    lines += ["| target | connections | requests/s | latency p50 | p99 |", "|---|---:|---:|---:|---:|"]
    for f in files:
        name = os.path.basename(f)[:-4]
        t, c = name.rsplit("-c", 1)
        txt = open(f).read()
        rps = re.search(r"Requests/sec:\s+([\d.]+)", txt)
        p50 = re.search(r"50%\s+(\S+)", txt)
        p99 = re.search(r"99%\s+(\S+)", txt)
        lines.append(f"| {TARGET_NAME.get(t, t)} | {c} | {rps.group(1) if rps else '–'} | {p50.group(1) if p50 else '–'} | {p99.group(1) if p99 else '–'} |")
    return lines + skip_lines("wrk")


out = []
with open(FACTS) as f:
    out += [f.read().rstrip(), ""]
for sec in (section_throughput, section_latency, section_hold, section_disconnect, section_wrk):
    out += sec() + [""]
if not HAVE_MPL:
    out.append("(charts not drawn: matplotlib is missing from bench/.venv)")
print("\n".join(out))
