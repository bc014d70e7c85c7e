"""Interleaved A/B of envctl trees: `python -m benchmarks.ab A=DIR B=DIR [--runs 12] [--size N]`.

A change worth a tenth of a second is lost in one benchmark run's noise (about ±0.2 s on
the small systems, on a shared 2-core machine). This runs create, a diff with no change and
destroy of the example (or of a generated environment of --size resources) with each tree
in turn, alternating which goes first, against one emulator at --latency-ms, and prints the
median wall and CPU time of each command for each tree. Each tree is a checkout of envctl
(`git worktree add /tmp/base main`); it runs as `python -m envctl` from that directory, so
that its own envctl is imported. Untraced: what users run. Each tree keeps botocore's
parsed data files in a cache directory of its own, filled by an untimed first cycle: two
trees that keep them differently would otherwise replace each other's at every command.
"""
from __future__ import annotations

import argparse
import compileall
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks import generate
from benchmarks.run import ROOT, Bench, Run, spawn

COMMANDS = (("create", "--yes"), ("diff",), ("destroy", "--yes"))


def cycle(bench: Bench, name: str, tree: Path, specs: Path, env_name: str) -> list[Run]:
    """create, diff, destroy with `tree`'s envctl (called `name`) on an empty emulator."""
    bench.reset()
    env = bench.env()
    env["PYTHONPATH"] = str(tree)
    env["XDG_CACHE_HOME"] = str(bench.tmp / "cache" / name)
    runs = []
    for command, *flags in COMMANDS:
        bench.between_commands()
        run = spawn([sys.executable, "-m", "envctl", "--specs", str(specs), "--no-interactive", command, env_name,
                     *flags], env, cwd=tree)
        if run.exit_code != 0:
            raise SystemExit(f"{tree}: {command} exited {run.exit_code}: {run.stderr[-1500:]}")
        runs.append(run)
    return runs


def summary(runs: list[list[Run]]) -> str:
    parts = []
    for i, (command, *_) in enumerate(COMMANDS):
        walls = [r[i].wall_s for r in runs]
        cpus = [r[i].cpu_s for r in runs]
        parts.append(f"{command} {statistics.median(walls):.3f} s (CPU {statistics.median(cpus):.3f})")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", metavar="NAME=DIR", help="envctl checkouts to compare")
    parser.add_argument("--runs", type=int, default=12, help="cycles per tree (default 12)")
    parser.add_argument("--size", type=int, default=0, help="a generated environment of SIZE resources "
                                                            "instead of the example")
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args(argv)
    trees = {}
    for pair in args.trees:
        name, _, directory = pair.partition("=")
        tree = Path(directory).resolve()
        if not (tree / "envctl" / "__init__.py").exists():
            parser.error(f"{directory} is not an envctl checkout (no envctl/__init__.py)")
        trees[name] = tree
        compileall.compile_dir(tree / "envctl", quiet=1)
    specs, env_name = ROOT / "specs", "qa"
    if args.size:
        specs = Path(tempfile.mkdtemp(prefix="envctl-ab-")) / "specs"
        specs.mkdir()
        env_name = generate.write(specs, args.size)
    bench = Bench(args.latency_ms / 1000)
    results: dict[str, list[list[Run]]] = {name: [] for name in trees}
    try:
        for name, tree in trees.items():
            cycle(bench, name, tree, specs, env_name)         # untimed: fills the tree's data file cache
        for i in range(args.runs):
            order = list(trees.items()) if i % 2 == 0 else list(trees.items())[::-1]
            for name, tree in order:
                results[name].append(cycle(bench, name, tree, specs, env_name))
    finally:
        bench.stop()
    width = max(map(len, trees))
    print(f"medians of {args.runs} interleaved runs, {args.latency_ms:g} ms a call, "
          f"{'example (qa)' if not args.size else f'{args.size} resources'}:")
    for name, runs in results.items():
        print(f"  {name:{width}}  {summary(runs)}")


if __name__ == "__main__":
    main()
