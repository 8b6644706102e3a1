"""A local HTTP stub server on the first free port of a range, served from a daemon thread.

For the stubs shaped like the outside world (marketdata.stub_vendors' price vendors, risk.chaos_custodian's
payout service): the project's own tests and chaos days reach them over real HTTP on loopback.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def local_http_serve(
    handler: type[BaseHTTPRequestHandler], *, ports: range, what: str, poll_interval: float = 0.5
) -> tuple[ThreadingHTTPServer, str, threading.Thread]:
    """(server, base URL, thread): `handler` served on 127.0.0.1 at the first port of `ports` that binds."""
    for port in ports:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), handler)
            break
        except OSError:
            continue
    else:
        raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1} for {what}")
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", thread
