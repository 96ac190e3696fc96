"""The benchmark generator against a real server process: each engine finishes, and
counts every delivery once (figures are the tools' business; nothing here is timed)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_fuzz import launch_server, stop_server

LOADGEN = Path(__file__).resolve().parent.parent / "tools" / "loadgen.py"
needs_cc = pytest.mark.skipif(shutil.which("gcc") is None, reason="the C engines need gcc")


@pytest.fixture
def server(tmp_path):
    port, proc, log_path = launch_server(tmp_path)
    yield port, proc
    stop_server(proc)


def loadgen(*args) -> dict:
    out = subprocess.run([sys.executable, str(LOADGEN), *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])["results"]
    return next(iter(results.values()))


@pytest.mark.parametrize("engine", [pytest.param("c", marks=needs_cc), "python"])
def test_fanout_counts_every_delivery_once(server, engine):
    port, proc = server
    r = loadgen("fanout", "--port", str(port), "--pid", str(proc.pid), "--members", "20",
                "--window", "10", "--duration", "1.5", "--warmup", "0.5", "--engine", engine)
    assert r["engine"] == engine
    assert r["messages_sent"] > 0
    assert r["deliveries"] == r["messages_sent"] * 20
    assert 0 < r["deliveries_per_s"] and 0 < r["server_cpu"] <= 1.5


@needs_cc
def test_latency_engine_gets_every_message_in_order(server):
    port, proc = server
    r = loadgen("latency", "--port", str(port), "--members", "10", "--rate", "50",
                "--duration", "1")
    assert r["messages_sent"] == 50
    assert r["deliveries"] == 500 and r["lost"] == 0 and r["out_of_order"] == 0
    assert 0 < r["p50_ms"] <= r["p99_ms"]


@pytest.mark.parametrize("mode", ["fanout", "latency", "chat"])
def test_a_c_engine_asked_for_tls_is_refused_before_connecting(mode):
    out = subprocess.run([sys.executable, str(LOADGEN), mode, "--port", "1", "--tls", "--engine", "c"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    error = json.loads(out.stdout.strip().splitlines()[-1])["error"]
    assert error == f"{mode}: --tls needs --engine python (the C engine speaks plain TCP only)"
