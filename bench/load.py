"""A small HTTP/1.1 load generator (asyncio, raw sockets): fixed concurrency for a fixed time.

It reconnects whenever the server closes the connection (gunicorn's sync workers close after
every response), so it measures what a browser population at that concurrency would see.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    wrk_percentiles: dict | None = None

    def percentile(self, p: float) -> float:
        if self.wrk_percentiles and int(p) in self.wrk_percentiles:
            return self.wrk_percentiles[int(p)] / 1000
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def p50_ms(self) -> float:
        return self.percentile(50) * 1000

    @property
    def p99_ms(self) -> float:
        return self.percentile(99) * 1000

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000 if self.latencies else float("nan")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:
        await reader.read()
        return status, True
    return status, headers.get("connection", "").lower() == "close"


async def _client(host: str, port: int, request: bytes, deadline: float, measure_from: float,
                  result: LoadResult) -> None:
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status, closed = await _read_response(reader)
            finished = time.perf_counter()
            if started >= measure_from:
                result.requests += 1
                result.latencies.append(finished - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status >= 400:
                    result.errors += 1
            if closed:
                writer.close()
                writer = None
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            result.errors += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def run_load(*, host: str, port: int, path: str, headers: dict[str, str] | None = None, concurrency: int = 16,
             seconds: float = 10.0, warmup: float = 2.0) -> LoadResult:
    """Hit `path` with `concurrency` connections for `warmup + seconds`; measure the last `seconds`."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: opsdesk-bench",
             "Accept: text/html,application/json", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    result = LoadResult(requests=0, errors=0, seconds=seconds, latencies=[], statuses={})

    async def main() -> None:
        start = time.perf_counter()
        measure_from = start + warmup
        deadline = measure_from + seconds
        await asyncio.gather(*(_client(host, port, request, deadline, measure_from, result)
                               for _ in range(concurrency)))

    asyncio.run(main())
    return result


def _wrk_ms(value: str) -> float:
    number = float(value.rstrip("usmin"))
    if value.endswith("us"):
        return number / 1000
    if value.endswith("ms"):
        return number
    if value.endswith("m"):
        return number * 60_000
    return number * 1000  # seconds


def run_wrk(*, host: str, port: int, path: str, headers: dict[str, str] | None = None, concurrency: int = 16,
            seconds: float = 10.0, warmup: float = 2.0, threads: int = 2) -> LoadResult:
    """The same measurement with wrk (C, far lighter than the Python client on a 2-core machine)."""
    import re
    import subprocess

    args = ["wrk", "-t", str(threads), "-c", str(concurrency), "--latency", "-H", "User-Agent: opsdesk-bench"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    url = f"http://{host}:{port}{path}"
    if warmup:
        subprocess.run([*args, "-d", f"{max(1, int(warmup))}s", url], capture_output=True, text=True, check=True)
    out = subprocess.run([*args, "-d", f"{int(seconds)}s", url], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    percentiles = {int(p): _wrk_ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    result = LoadResult(requests=requests, errors=int(errors.group(1)) if errors else 0, seconds=requests / rps,
                        latencies=[], statuses={})
    if socket_errors:
        result.errors += sum(int(x) for x in socket_errors.groups()[1:])  # connect errors are the sync worker's closes
    result.wrk_percentiles = percentiles
    return result
