"""Runs moto for the integration tests (see moto.rs).

Prints `PORT <n>` once the server answers HTTP, then lives until stdin reaches EOF,
which happens when the test process exits even if it never ran its destructors.
"""

import functools
import logging
import os
import threading
import sys
import urllib.error
import urllib.request

from moto.dynamodb.models import DynamoDBBackend
from moto.server import ThreadedMotoServer

# DynamoDB applies each request atomically: a conditional write is checked and made as one step.
# moto's threaded server does not, so two runs racing for the same lease could both see it free.
# One lock around every DynamoDB operation gives the tests DynamoDB's atomicity.
_dynamodb_lock = threading.RLock()


def _atomic(operation):
    @functools.wraps(operation)
    def locked(self, *args, **kwargs):
        with _dynamodb_lock:
            return operation(self, *args, **kwargs)

    return locked


for _name in (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))


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
