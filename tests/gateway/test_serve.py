"""``manage.py serve``, run as an operator runs it: a real process, a real port, a throwaway database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]


@pytest.fixture
def serve_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a production start: no Redis, SQLite in a temp dir, DEBUG off."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="gateway.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        SECRET_KEY="serve-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        GATEWAY_ENCRYPTION_KEYS="JtK1SvNtAorb16ntL5ZIrN3U0silIHlMv6BBkYLowhM=",
        GATEWAY_AUDIT_WAL_DIR=str(tmp_path / "audit-spool"),
        STATIC_ROOT=str(tmp_path / "static"),
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="0",
        LOG_LEVEL="WARNING",
    )
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MANAGE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@contextmanager
def serving(env: dict[str, str], *options: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``manage.py serve [options]`` on a free port over a migrated database; stopped with SIGTERM."""
    assert manage("migrate", "--verbosity", "0", env=env).returncode == 0
    port = free_port()
    process = subprocess.Popen(
        [*MANAGE, "serve", "--port", str(port), *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the server's workers go in its group, so nothing outlives the test
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@pytest.fixture
def served(serve_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with serving(serve_env) as server:
        yield server


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 20) -> httpx2.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"serve exited with {process.returncode}:\n{output}")
        try:
            return httpx2.get(url, timeout=2, trust_env=False)
        except httpx2.TransportError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {timeout} s")


def test_served_gateway_answers_health_probe_with_a_request_id(served):
    # given
    base_url, process = served
    # when
    response = wait_for(f"{base_url}/healthz", process)
    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers.get("X-Request-ID")


def test_served_gateway_stops_cleanly_on_sigterm(served):
    base_url, process = served
    wait_for(f"{base_url}/healthz", process)

    process.send_signal(signal.SIGTERM)

    # uvicorn re-raises the signal once it has shut down gracefully, so -SIGTERM is a clean exit too.
    assert process.wait(10) in (0, -signal.SIGTERM)
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    assert "Traceback" not in output


def test_several_workers_without_redis_are_refused_with_a_clear_message(serve_env):
    result = manage("serve", "--workers", "2", "--port", str(free_port()), env=serve_env)

    assert result.returncode != 0
    assert (
        "without Redis, limits and caches are per process; set REDIS_URL to run several workers"
        in result.stderr
    )


def test_misconfigured_gateway_fails_at_start_up_not_on_first_request(serve_env):
    serve_env["GATEWAY_ENCRYPTION_KEYS"] = "not-a-fernet-key"

    result = manage("serve", "--port", str(free_port()), env=serve_env)

    assert result.returncode != 0
    assert "gateway.E002" in result.stderr


def test_admin_login_page_gets_its_css_with_a_far_future_cache_header(served):
    # given
    base_url, process = served
    login = wait_for(f"{base_url}/admin/login/", process)
    assert login.status_code == 200
    [css_path] = re.findall(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login.text)
    # when
    plain = httpx2.get(base_url + css_path, headers={"Accept-Encoding": "identity"}, timeout=10)
    gzipped = httpx2.get(base_url + css_path, headers={"Accept-Encoding": "gzip"}, timeout=10)
    # then
    assert plain.status_code == 200 and plain.headers["Content-Type"].startswith("text/css")
    assert (
        "immutable" in plain.headers["Cache-Control"]
        and "max-age=315360000" in plain.headers["Cache-Control"]
    )
    assert "Content-Encoding" not in plain.headers
    assert gzipped.status_code == 200 and gzipped.headers["Content-Encoding"] == "gzip"
    assert gzipped.text == plain.text  # httpx2 decodes the gzip body


@pytest.mark.parametrize(
    ("variable", "value", "check_id"),
    [
        ("SECRET_KEY", "", "gateway.E004"),
        ("GATEWAY_MAX_REQUEST_BODY_BYTES", "-1", "gateway.E010"),
    ],
)
def test_serve_refuses_to_start_on_a_configuration_error(serve_env, variable, value, check_id):
    serve_env[variable] = value

    result = manage("serve", "--port", str(free_port()), env=serve_env)

    assert result.returncode != 0
    assert check_id in result.stderr and "Traceback" not in result.stderr
    assert "Serving the gateway" not in result.stderr


def test_https_settings_from_the_environment_reach_the_admin_but_never_redirect_agents_or_probes(serve_env):
    serve_env.update(
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="600",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
    )
    with serving(serve_env) as (base_url, process):
        assert wait_for(f"{base_url}/healthz", process).status_code == 200
        # when
        plain = httpx2.get(f"{base_url}/admin/login/", timeout=10)
        behind_tls = httpx2.get(
            f"{base_url}/admin/login/", headers={"X-Forwarded-Proto": "https"}, timeout=10
        )
        agent = httpx2.post(f"{base_url}/mcp/nothing-here/", json={}, timeout=10)
    # then
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://127.0.0.1:")
    assert behind_tls.status_code == 200
    assert behind_tls.headers["Strict-Transport-Security"] == "max-age=600"
    cookie = behind_tls.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert agent.status_code != 301


def test_an_unwritable_static_root_is_a_clear_start_up_error(serve_env, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    serve_env["STATIC_ROOT"] = str(blocker / "static")

    result = manage("serve", "--port", str(free_port()), env=serve_env)

    assert result.returncode != 0
    assert "Could not collect static files into STATIC_ROOT" in result.stderr
    assert "Traceback" not in result.stderr


def _calls_per_process(directory: Path, slug_label: str) -> dict[str, float]:
    """gateway_calls_total for ``slug_label`` in each worker's own file of the multiprocess directory."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):
            name, _sample, labels = json.loads(key)[:3]
            if name == "gateway_calls" and labels.get("target") == slug_label:
                counts[path.stem] = counts.get(path.stem, 0) + value
    return counts


def test_one_scrape_counts_the_calls_of_every_worker(serve_env, tmp_path, redis_url):
    # given: two workers (they need Redis) and the metrics token
    token = "serve-metrics-token-0123456789"
    metrics_dir = tmp_path / "metrics"
    serve_env.update(
        REDIS_URL=redis_url, GATEWAY_METRICS_TOKEN=token, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    with serving(serve_env, "--workers", "2") as (base_url, process):
        wait_for(f"{base_url}/healthz", process)
        # when: calls on fresh connections until both workers have served some
        made = 0
        deadline = time.monotonic() + 30
        while len(_calls_per_process(metrics_dir, "(none)")) < 2 and time.monotonic() < deadline:
            for _ in range(10):
                assert httpx2.post(f"{base_url}/mcp/nothing-here/", json={}, timeout=10).status_code == 404
                made += 1
        per_process = _calls_per_process(metrics_dir, "(none)")
        scrapes = [
            httpx2.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            for _ in range(4)
        ]
    # then: every scrape, whichever worker answered it, holds every worker's calls
    assert len(per_process) == 2 and sum(per_process.values()) == made
    expected = f'gateway_calls_total{{decision="error",status_class="4xx",target="(none)"}} {float(made)}'
    assert all(scrape.status_code == 200 and expected in scrape.text for scrape in scrapes)
