"""Throttling at raised parallelism: `python -m benchmarks.throttling` (see benchmarks/README.md).

The emulator keeps AWS's rate limits (envctl/sandbox/middleware.py RateLimit with aws_limits:
the published rates envctl paces itself with, and 20 calls a second per action for the
actions with none published). envctl creates and destroys each system at parallelism 10 and 50,
paced by its client-side token buckets (the default) and with --no-rate-limit, and the
emulator counts the calls it refused. Results: results/throttling.md and throttling.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks import generate
from benchmarks.run import RESULTS, ROOT, Bench, System


def measure(bench: Bench, system: System, parallelism: int, paced: bool) -> list[dict]:
    """create, a diff with no change, then destroy of one system: wall time, calls and the calls
    the emulator throttled. (A diff's reads have their own fixed pool: `parallelism` is create's
    and destroy's.)"""
    bench.reset()
    rows = []
    pacing = [] if paced else ["--no-rate-limit"]
    applying = ["--yes", "--parallelism", str(parallelism)]
    for step, options in (("create", applying), ("diff", []), ("destroy", applying)):
        bench.limits.configure({}, aws_limits=True)         # full buckets, counts at zero
        run = bench.envctl(system.specs, *pacing, step, system.env, *options)
        throttled = Counter(bench.limits.throttled)
        by_service = Counter()
        for call, n in throttled.items():
            by_service[call.split(":", 1)[0]] += n
        rows.append({"system": system.name, "step": step, "parallelism": parallelism, "paced": paced,
                     "exit_code": run.exit_code, "wall_s": round(run.wall_s, 2),
                     "http_requests": run.http_requests, "throttled": sum(throttled.values()),
                     "throttled_by_service": dict(by_service.most_common()),
                     "throttled_top": dict(throttled.most_common(5)),
                     "error": None if run.exit_code == 0 else (run.stderr or run.stdout)[-400:]})
        print(f"  {step} p={parallelism} {'paced' if paced else 'unpaced'}: {run.wall_s:.1f}s, "
              f"{run.http_requests} requests, {sum(throttled.values())} throttled, exit {run.exit_code}",
              file=sys.stderr, flush=True)
    return rows


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = ["# envctl under AWS's rate limits", "",
             f"{meta['date']}; latency {meta['latency_ms']:g} ms a call; emulated limits: {meta['limits']}.", "",
             "Throttled = calls the emulator refused for their rate (botocore retried them). Paced = envctl's "
             "client-side token buckets (the default); unpaced = `--no-rate-limit`.", "",
             "| system | step | parallelism | paced | wall s | requests | throttled | share | throttled by service | exit |",
             "|---|---|---:|---|---:|---:|---:|---:|---|---:|"]
    for r in result["runs"]:
        share = r["throttled"] / r["http_requests"] if r["http_requests"] else 0
        services = ", ".join(f"{s} {n}" for s, n in r["throttled_by_service"].items()) or "–"
        lines.append(f"| {r['system']} | {r['step']} | {r['parallelism']} | {'yes' if r['paced'] else 'no'} | "
                     f"{r['wall_s']} | {r['http_requests']} | {r['throttled']} | {share:.1%} | {services} | "
                     f"{r['exit_code']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="envctl's throttled calls at parallelism 10 and 50.")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--size", type=int, default=200, help="resources of the generated environment (0: none)")
    parser.add_argument("--parallelism", default="10,50")
    parser.add_argument("--no-example", action="store_true")
    parser.add_argument("--unpaced", action="store_true", help="also run with --no-rate-limit, for comparison")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    bench = Bench(args.latency_ms / 1000)
    systems = [] if args.no_example else [System("example (qa)", ROOT / "specs", "qa")]
    if args.size:
        specs = bench.tmp / "specs"
        systems.append(System(f"generated {args.size}", specs, generate.write(specs, args.size), size=args.size))
    runs = []
    try:
        for system in systems:
            print(system.name, file=sys.stderr, flush=True)
            for parallelism in (int(p) for p in args.parallelism.split(",")):
                for paced in (True, False) if args.unpaced else (True,):
                    runs += measure(bench, system, parallelism, paced)
    finally:
        bench.stop()
    result = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M"), "latency_ms": args.latency_ms,
                       "limits": "AWS's published rates (envctl/aws/ratelimit.py) in the system's region, "
                                 "20 calls/s a bucket per action where none is published"},
              "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throttling.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "throttling.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
