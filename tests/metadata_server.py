"""A stand-in for the Compute metadata server on a loopback port (the cloud boundary)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class FakeMetadata:
    """Where it listens (``GCE_METADATA_HOST``), what it answers, and the requests it saw."""

    host: str = ""
    status: int = 200
    body: bytes = b"demo-project"
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Metadata-Flavor)


@contextlib.contextmanager
def fake_metadata(status: int = 200, body: bytes = b"demo-project") -> Iterator[FakeMetadata]:
    """Serve every GET with ``status`` and ``body`` on 127.0.0.1 until the block ends."""
    state = FakeMetadata(status=status, body=body)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append((self.path, self.headers.get("Metadata-Flavor")))
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
