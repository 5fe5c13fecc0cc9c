"""What the gateway costs on a tools/call: latency, throughput and CPU, direct versus proxied.

Run by hand from the repository root::

    .venv/bin/python bench/proxy_bench.py [--requests 2000] [--server uvicorn|granian|daphne|all] [--rounds 3]

Everything runs on loopback, in separate processes so that each one's CPU time can be read from
/proc: a real MCP server (tests/upstream.py, on uvicorn), the gateway (``manage.py serve`` over a
throwaway SQLite database) and the load generator (asyncio + httpx2, one keep-alive connection and
one MCP session per concurrent agent, the initialize handshake done before the clock starts).
Each case sends a bounded number of ``tools/call`` requests of ``search`` and stops after
``--max-seconds`` at the latest. The figures are printed as a markdown table.

CPU time per call (from /proc, whole process trees) is the figure that carries over to another
machine; on two cores, req/s at concurrency 32 is bound by all three processes together. The
machine may be shared: every case is run ``--rounds`` times, the CPU time that processes outside
the benchmark used meanwhile is shown as "other load", and the table reports a quiet round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = ROOT / "bench" / "loadgen.py"
sys.path.insert(0, str(ROOT))

from gateway.management.commands.serve import DEFAULT_SERVER  # noqa: E402

PYTHON = sys.executable
SERVERS = ("granian", "uvicorn", "daphne")
CONCURRENCIES = (1, 32)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Three allow-rules; the search call matches the last, so rule matching does its full work.
ALLOW_RULES = [("POST", "/prompts/*"), ("POST", "/resources/docs://**"), ("POST", "/tools/search")]
UPSTREAM_SECRET = "bench-upstream-secret"
SETUP_CODE = """
from gateway.services import credential_create, target_create, tenant_create
tenant = tenant_create(name="bench")
target = target_create(tenant=tenant, slug="bench", upstream_url={url!r}, auth_type="bearer", auth_secret={secret!r})
issued = credential_create(tenant=tenant, name="bench-agent", targets=[target], allow={rules!r})
print("TOKEN", issued.token)
"""


# --- /proc accounting ------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (a granian or uvicorn master has worker children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def machine_busy_seconds() -> float:
    """CPU time spent by every process of the machine (all cores), from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / CLOCK_TICKS


def cpu_seconds(root: int) -> float:
    """User + system CPU time of ``root``'s process tree, all threads included."""
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = _stat_fields(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


# --- the orchestration ---------------------------------------------------------------------------------


@dataclass
class CaseResult:
    label: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    gateway_cpu_ms: float | None
    upstream_cpu_ms: float
    load_cpu_ms: float
    other_load: float  # cores kept busy by processes outside the benchmark, during the case


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {timeout} s:\n{log.read_text()[-3000:]}")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))]


def run_case(
    label: str,
    url: str,
    token: str,
    concurrency: int,
    args: argparse.Namespace,
    *,
    upstream: int,
    gateway: int | None,
) -> CaseResult:
    warmup = max(concurrency * 5, args.requests // 10)
    command = [
        PYTHON,
        str(LOADGEN),
        "load",
        url,
        token,
        str(concurrency),
        str(args.requests),
        str(warmup),
        str(args.max_seconds),
    ]
    load = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert load.stdin is not None and load.stdout is not None
    if load.stdout.readline().strip() != "READY":
        raise SystemExit(f"{label}: the load generator failed during the handshake or the warm-up")
    up_before = cpu_seconds(upstream)
    gw_before = cpu_seconds(gateway) if gateway else 0.0
    busy_before, wall_before = machine_busy_seconds(), time.monotonic()
    load.stdin.write("GO\n")
    load.stdin.flush()
    report = json.loads(load.stdout.readline())
    busy, wall = machine_busy_seconds() - busy_before, time.monotonic() - wall_before
    up_cpu = cpu_seconds(upstream) - up_before
    gw_cpu = cpu_seconds(gateway) - gw_before if gateway else None
    load.wait(30)
    other = max(0.0, busy - up_cpu - (gw_cpu or 0.0) - report["cpu"]) / wall
    latencies = sorted(report["latencies"])
    if report["error_count"]:
        print(
            f"  {label} c={concurrency}: {report['error_count']} errors, e.g. {report['errors']}",
            file=sys.stderr,
        )
    if not latencies:
        raise SystemExit(f"{label}: no successful call")
    calls = len(latencies) + report["error_count"]
    return CaseResult(
        label=label,
        concurrency=concurrency,
        requests=len(latencies),
        errors=report["error_count"],
        rps=calls / report["elapsed"],
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        gateway_cpu_ms=None if gw_cpu is None else gw_cpu * 1000 / calls,
        upstream_cpu_ms=up_cpu * 1000 / calls,
        load_cpu_ms=report["cpu"] * 1000 / calls,
        other_load=other,
    )


def gateway_env(tmp: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="gateway.settings",
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        GATEWAY_ENCRYPTION_KEYS="JtK1SvNtAorb16ntL5ZIrN3U0silIHlMv6BBkYLowhM=",
        GATEWAY_AUDIT_WAL_DIR=str(tmp / "audit-spool"),
        GATEWAY_UPSTREAM_ALLOW="127.0.0.0/8",  # the benchmark upstreams listen on loopback
        ALLOWED_HOSTS="*",
        DEBUG="0",
        LOG_LEVEL="WARNING",
    )
    return env


def prepare_database(
    env: dict[str, str], upstream_url: str, rules: list[tuple[str, str]] = ALLOW_RULES
) -> str:
    """Migrate the throwaway database and create the tenant, target and credential; return the token."""
    manage = [PYTHON, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    code = SETUP_CODE.format(url=upstream_url, secret=UPSTREAM_SECRET, rules=rules)
    out = subprocess.run(
        [*manage, "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("TOKEN "))


def machine_description() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, Python {platform.python_version()}"


def code_revision() -> str:
    """The commit measured, flagged when tracked files outside bench/ had uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def server_versions() -> str:
    """Versions of the parts measured; the optional speed-ups that uvicorn and granian pick up when present."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    names = ("Django", "granian", "uvicorn", "daphne", "httpx2", "mcp", "uvloop", "httptools", "websockets")
    return ", ".join(installed(name) for name in names)


QUIET_MARGIN_CORES = 0.1


def representative(rounds: list[CaseResult]) -> CaseResult:
    """Other jobs share the machine: of the rounds run within QUIET_MARGIN_CORES of the least
    disturbed one, the one with the median req/s."""
    quietest = min(r.other_load for r in rounds)
    quiet = sorted((r for r in rounds if r.other_load <= quietest + QUIET_MARGIN_CORES), key=lambda r: r.rps)
    return quiet[(len(quiet) - 1) // 2]


def print_table(rounds: dict[tuple[str, int], list[CaseResult]], keys: list[tuple[str, int]]) -> None:
    print(
        "| path | concurrency | calls | errors | req/s | req/s, all rounds | p50 ms | p99 ms "
        "| gateway CPU ms/call | upstream CPU ms/call | load-gen CPU ms/call | other load (cores) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    chosen = {key: representative(rounds[key]) for key in keys}
    for key in keys:
        r = chosen[key]
        spread = f"{min(x.rps for x in rounds[key]):.0f}-{max(x.rps for x in rounds[key]):.0f}"
        gateway_cpu = "-" if r.gateway_cpu_ms is None else f"{r.gateway_cpu_ms:.2f}"
        print(
            f"| {r.label} | {r.concurrency} | {r.requests} | {r.errors} | {r.rps:.0f} | {spread} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {gateway_cpu} | {r.upstream_cpu_ms:.2f} "
            f"| {r.load_cpu_ms:.2f} | {r.other_load:.2f} |"
        )
    direct = {r.concurrency: r for r in chosen.values() if r.label == "direct"}
    print()
    for r in chosen.values():
        if r.label != "direct" and r.concurrency in direct:
            added = r.p50_ms - direct[r.concurrency].p50_ms
            print(f"- {r.label}, concurrency {r.concurrency}: added p50 latency {added:+.2f} ms")


def benchmark(args: argparse.Namespace) -> None:
    servers = SERVERS if args.server == "all" else (args.server,)
    print(f"Machine: {machine_description()}")
    print(f"Software: {server_versions()}; gateway code at {code_revision()}")
    print(
        f"Command: {' '.join([Path(PYTHON).name, *sys.argv])}; {time.strftime('%Y-%m-%d %H:%M %Z')}\n",
        flush=True,
    )
    rounds: dict[tuple[str, int], list[CaseResult]] = {}

    def keep(result: CaseResult) -> None:
        print(
            f"  {result.label} c={result.concurrency}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
            f"gateway CPU {result.gateway_cpu_ms or 0:.2f} ms/call, other load {result.other_load:.2f} cores",
            file=sys.stderr,
            flush=True,
        )
        rounds.setdefault((result.label, result.concurrency), []).append(result)

    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = gateway_env(tmp)
        up_port = free_port()
        upstream_url = f"http://127.0.0.1:{up_port}/mcp"
        upstream = start([PYTHON, str(LOADGEN), "upstream", str(up_port)], env, tmp / "upstream.log")
        try:
            wait_until_up(upstream_url, upstream, tmp / "upstream.log")
            token = prepare_database(env, upstream_url)
            for round_index in range(args.rounds):
                for concurrency in CONCURRENCIES:
                    keep(
                        run_case(
                            "direct",
                            upstream_url,
                            "-",
                            concurrency,
                            args,
                            upstream=upstream.pid,
                            gateway=None,
                        )
                    )
                # Rotate the servers' order so none always runs first (or last) in a round.
                for server in servers[round_index % len(servers) :] + servers[: round_index % len(servers)]:
                    for result in bench_gateway(server, token, env, tmp, args, upstream=upstream.pid):
                        keep(result)
        finally:
            stop(upstream)
    labels = ["direct", *(f"gateway ({server})" for server in servers)]
    print_table(rounds, [(label, c) for label in labels for c in CONCURRENCIES])


def bench_gateway(
    server: str, token: str, env: dict[str, str], tmp: Path, args: argparse.Namespace, *, upstream: int
) -> list[CaseResult]:
    port = free_port()
    log = tmp / f"gateway-{server}.log"
    gateway = start(
        [PYTHON, str(ROOT / "manage.py"), "serve", "--server", server, "--port", str(port)], env, log
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", gateway, log)
        url = f"http://127.0.0.1:{port}/mcp/bench/"
        try:
            return [
                run_case(f"gateway ({server})", url, token, c, args, upstream=upstream, gateway=gateway.pid)
                for c in CONCURRENCIES
            ]
        except SystemExit as failure:
            raise SystemExit(f"{failure}\n--- gateway log (tail):\n{log.read_text()[-3000:]}") from None
    finally:
        stop(gateway)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="tools/call requests per case (default 2000)"
    )
    parser.add_argument(
        "--server",
        choices=[*SERVERS, "all"],
        default=DEFAULT_SERVER,
        help=f"ASGI server(s) for the gateway (default {DEFAULT_SERVER}, the serve default)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="time bound of each case (default 120)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every case (default 3); see representative()"
    )
    benchmark(parser.parse_args())


if __name__ == "__main__":
    main()
