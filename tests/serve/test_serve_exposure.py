"""What a real server (uvicorn in a child process, run as `superres serve` runs it) does with
clients that hold connections open or come from another site: headers and bodies that stall
are cut off, and a page elsewhere cannot drive it."""

from __future__ import annotations

import socket
import time

import httpx

from serving import image_bytes, subprocess_server


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_connections_that_stall_are_closed_and_the_server_stays_healthy():
    with subprocess_server({"header_timeout": 1.0, "body_timeout": 1.0}) as (_, base_url):
        port = int(base_url.rsplit(":", 1)[1])
        stalled = []
        for _ in range(35):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multi")  # and no more
            stalled.append(sock)
        silent = socket.create_connection(("127.0.0.1", port))  # sends nothing at all
        started = time.monotonic()
        assert all(_closed_by_server(sock, 5.0) for sock in [*stalled, silent])
        assert time.monotonic() - started < 5.0
        for sock in [*stalled, silent]:
            sock.close()

        # Headers complete, body promised and not sent: 408, not a connection held for good.
        body = socket.create_connection(("127.0.0.1", port))
        body.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 5000\r\n\r\n--b\r\n")
        body.settimeout(10)
        answer = b""
        while chunk := body.recv(4096):  # headers and body may come apart; the server then closes
            answer += chunk
        body.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"request body not received" in answer

        # A request sent at an ordinary pace is unaffected, and the server is healthy.
        ok = httpx.post(base_url + "/v1/upscale", files={"image": ("x.png", image_bytes(16, 16))}, data={"model": "bicubic", "scale": "2"})
        assert ok.status_code == 200, ok.text
        assert httpx.get(base_url + "/healthz").json()["status"] == "ok"


def test_another_site_cannot_drive_the_server():
    with subprocess_server({}) as (_, base_url):
        files = {"image": ("x.png", image_bytes(16, 16))}
        # What a form on another site makes a visitor's browser send: a simple multipart POST.
        cross = httpx.post(base_url + "/v1/upscale", files=files, data={"model": "bicubic", "scale": "2"}, headers={"origin": "https://evil.example"})
        assert cross.status_code == 403 and cross.json()["error"].startswith("cross-origin request from 'https://evil.example' refused")
        # DNS rebinding: the page's own origin, under a name that now resolves here.
        rebound = httpx.post(
            base_url + "/v1/upscale", files=files, data={"model": "bicubic", "scale": "2"},
            headers={"host": "evil.example:8000", "origin": "http://evil.example:8000"},
        )
        assert rebound.status_code == 400 and "does not answer to host 'evil.example:8000'" in rebound.json()["error"]
        redirect = httpx.get(base_url + "/static", headers={"host": "evil.example"})
        assert redirect.status_code == 400 and "location" not in redirect.headers
        own = httpx.post(base_url + "/v1/upscale", files=files, data={"model": "bicubic", "scale": "2"}, headers={"origin": base_url})
        assert own.status_code == 200, own.text
