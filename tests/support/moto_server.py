"""Runs moto for the integration tests (see moto.rs).

Prints `PORT <n>` once the server answers HTTP, then lives until stdin reaches EOF,
which happens when the test process exits even if it never ran its destructors.
"""

import logging
import os
import sys
import urllib.error
import urllib.request

from moto.server import ThreadedMotoServer


def main() -> None:
    # One line per request on stderr is noise; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # Port 0: the OS picks a free port; get_host_and_port() reports it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()

    # Make sure it really answers before telling the parent.
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=30).read()
    except urllib.error.HTTPError:
        pass  # any HTTP answer proves the server is up

    print(f"PORT {port}", flush=True)

    sys.stdin.read()  # blocks until the parent closes the pipe or dies
    # os._exit: don't wait for moto's non-daemon threads or shutdown hooks.
    os._exit(0)


if __name__ == "__main__":
    main()
