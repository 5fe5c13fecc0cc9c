"""What the Prometheus metrics cost a proxied call: ``record_call`` (the hot-path record), the
once-a-second sample and a scrape, with the values in memory (one process) and in prometheus-client's
multiprocess files (``serve --workers N``).

Run by hand from the repository root::

    .venv/bin/python bench/metrics_bench.py [--calls 200000] [--rounds 5]

Each mode runs in a fresh process (prometheus-client picks memory or files when first imported). A
round times ``--calls`` records of a realistic mix (allowed calls with an upstream latency, scope
denials, rate-limited calls, unknown slugs) over 20 configured targets, with ``time.process_time``
(user + system CPU), and prints the median per call over the rounds. ``record_call`` reads only
context fields, so a slotted stand-in with the same fields is enough.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Target:
    __slots__ = ("slug",)

    def __init__(self, slug: str) -> None:
        self.slug = slug


class Context:
    """The fields of ProxyContext that ``record_call`` reads."""

    __slots__ = ("decision", "error_kind", "status", "target", "upstream_seconds")

    def __init__(self, target: Target | None, status: int, decision: str, kind: str, upstream: float | None):
        self.target, self.status, self.decision = target, status, decision
        self.error_kind, self.upstream_seconds = kind, upstream


def contexts(count: int) -> list[Context]:
    targets = [Target(f"target-{n}") for n in range(20)]
    mix = []
    for n in range(count):
        target = targets[n % len(targets)]
        if n % 10 < 7:
            mix.append(Context(target, 200, "allowed", "", 0.001 + (n % 100) / 1000))
        elif n % 10 == 7:
            mix.append(Context(target, 400, "denied", "scope", None))
        elif n % 10 == 8:
            mix.append(Context(target, 429, "denied", "rate_limited", None))
        else:
            mix.append(Context(None, 404, "error", "unknown_target", None))
    return mix


def measure(calls: int, rounds: int) -> None:
    """In this process: print CPU µs per record_call, per sample, per scrape."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    django.setup()
    from gateway.metrics.endpoint import _render
    from gateway.metrics.multiprocess import multiprocess_directory
    from gateway.metrics.recording import record_call

    mix = contexts(calls)
    for ctx in mix[:1000]:  # create every labelled child first, as a warm gateway has
        record_call(ctx)  # type: ignore[arg-type]
    per_call = []
    for _ in range(rounds):
        started = time.process_time()
        for ctx in mix:
            record_call(ctx)  # type: ignore[arg-type]
        per_call.append((time.process_time() - started) / calls * 1e6)
    directory = multiprocess_directory()
    started = time.process_time()
    for _ in range(20):
        _render(directory)
    scrape_ms = (time.process_time() - started) / 20 * 1e3
    mode = "files (multiprocess)" if directory else "memory (one process)"
    print(
        f"{mode}: record_call {statistics.median(per_call):.2f} µs/call "
        f"(rounds {min(per_call):.2f}-{max(per_call):.2f}), scrape {scrape_ms:.2f} ms CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.calls, args.rounds)
        return
    base = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    base.setdefault("SECRET_KEY", "bench-" + "x" * 40)
    base.setdefault("DEBUG", "1")
    sizes = ["--calls", str(args.calls), "--rounds", str(args.rounds)]
    command = [sys.executable, __file__, "--measure", *sizes]
    subprocess.run(command, env=base, check=True)
    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as directory:
        subprocess.run(command, env={**base, "PROMETHEUS_MULTIPROC_DIR": directory}, check=True)


if __name__ == "__main__":
    main()
