"""GET with a deadline for the whole call, a cap on the body, and retries: Optimizely's two APIs.

``requests`` timeouts apply per socket read, so a server that trickles one byte at a time holds a
plain call as long as it likes, and an endless body fills memory. Here the body is read with
``read1`` (one socket read each, at most ``READ_SECONDS``), so the reading thread sees the deadline
and the cap between reads and stops: nothing goes on reading after the caller gave up.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable

import requests
import urllib3

READ_SECONDS = 5.0  # one socket read at most: how late the reading thread notices a passed deadline
CHUNK = 64 * 1024


class DeadlinePassed(Exception):
    pass


class ResponseTooLarge(Exception):
    pass


def bounded_get(
    url: str, *, headers: dict, params: dict | None = None, seconds: float, max_bytes: int
) -> tuple[int, bytes, dict]:
    """(status, body, headers) within ``seconds``; raises DeadlinePassed, ResponseTooLarge or a
    ``requests`` error. The body is never held beyond ``max_bytes``."""
    out: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    deadline = time.monotonic() + seconds

    def call() -> None:
        try:
            read = min(seconds, READ_SECONDS)
            with requests.get(url, params=params, headers=headers, stream=True, timeout=(read, read)) as r:
                body = bytearray()
                while not stop.is_set() and time.monotonic() < deadline:
                    chunk = r.raw.read1(CHUNK, decode_content=True)
                    if not chunk:
                        out.put((r.status_code, bytes(body), dict(r.headers)))
                        return
                    body += chunk
                    if len(body) > max_bytes:
                        out.put(ResponseTooLarge(f"answered more than {max_bytes:,} bytes"))
                        return
        except urllib3.exceptions.HTTPError as exc:  # a read timeout or a cut connection mid-body
            out.put(requests.ConnectionError(type(exc).__name__))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            out.put(exc)

    thread = threading.Thread(target=call, daemon=True, name="optimizely-http")
    thread.start()
    try:
        result = out.get(timeout=seconds)
    except queue.Empty:
        stop.set()
        raise DeadlinePassed(f"no complete answer within {seconds:g} s") from None
    if isinstance(result, BaseException):
        raise result
    return result


def retry_delay(attempt: int, headers: dict, remaining: float) -> float:
    """Backoff with jitter, or the server's Retry-After (seconds) when it gives one; never past the deadline."""
    wait = 0.5 * 2**attempt * (1 + random.random())
    after = headers.get("Retry-After", "")
    if after.strip().isdigit():
        wait = float(after)
    return max(0.0, min(wait, remaining))


def get_with_retries(
    send: Callable[[float], tuple[int, bytes, dict]],
    deadline: float,
    attempts: int,
    seconds: float,
    whose: str = "",
) -> tuple[int, bytes] | str:
    """Call ``send(remaining)`` until it answers other than 429/5xx, until ``deadline`` (monotonic):
    the caller's deadline of ``seconds``, which may span several calls (``whose``: "the lookup's ").

    Returns (status, body), or a text saying why no answer came (passed to the caller's error)."""
    problem = f"no complete answer within {whose}{seconds:g} s"
    for attempt in range(1, attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        headers: dict = {}
        try:
            status, body, headers = send(remaining)
        except DeadlinePassed:
            return f"no complete answer within {whose}{seconds:g} s"
        except ResponseTooLarge as exc:
            return str(exc)
        except requests.RequestException as exc:
            # The exception text can echo request headers in some adapters: name the type only.
            problem = f"could not be reached ({type(exc).__name__})"
        else:
            if status != 429 and status < 500:
                return status, body
            problem = f"answered HTTP {status}"
        if attempt < attempts:
            time.sleep(retry_delay(attempt, headers, deadline - time.monotonic()))
    return problem
