"""A fake OpenAI-compatible chat-completions server on loopback, scripted per test.

`FakeModelServer(answer)` calls `answer(request_json)` for each POST to /v1/chat/completions and
sends what it returns: a str (the completion text, with usage counted as words), a dict (the whole
JSON reply), `Status(code)`, `Sleep(seconds, then)` (answers late: for timeouts) or `Raw(bytes)`.
Every request body is kept in `requests`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass(frozen=True)
class Status:
    code: int


@dataclass(frozen=True)
class Raw:
    body: bytes


@dataclass(frozen=True)
class Sleep:
    seconds: float
    then: Any = "late"


def completion(text: str, request: dict, *, model: str | None = None, finish_reason: str = "stop") -> dict:
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
        "model": model or request.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(text.split()),
                  "total_tokens": prompt_words + len(text.split())},
    }


@dataclass
class FakeModelServer:
    answer: Callable[[dict], Any]
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = json.loads(body)
                fake.requests.append(request)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error":"not found"}')
                    return
                result = fake.answer(request)
                if isinstance(result, Sleep):
                    time.sleep(result.seconds)
                    result = result.then
                if isinstance(result, Status):
                    self._send(result.code, b'{"error":{"message":"scripted failure"}}')
                elif isinstance(result, Raw):
                    self._send(200, result.body)
                elif isinstance(result, dict):
                    self._send(200, json.dumps(result).encode())
                else:
                    self._send(200, json.dumps(completion(str(result), request)).encode())

            def _send(self, code: int, payload: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
