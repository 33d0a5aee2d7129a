"""Serves Keystone's public WSGI application on 127.0.0.1 for tests.

Usage: serve.py PORTFILE   (OS_KEYSTONE_CONFIG_FILES names keystone.conf)

Binds 127.0.0.1:0 first and writes the chosen port to PORTFILE, so the
caller can bootstrap Keystone's endpoints with the real URL while this
process is still importing Keystone. Requests are then served one at a
time (wsgiref's server is single-threaded): Keystone on sqlite answers
"database is locked" to concurrent writers.
"""

import os
import sys
from wsgiref import simple_server


def main():
    portfile = sys.argv[1]
    # A deep listen queue: clients that arrive while a request is served
    # wait in it instead of retrying their SYN a second later.
    simple_server.WSGIServer.request_queue_size = 128
    server = simple_server.WSGIServer(("127.0.0.1", 0), simple_server.WSGIRequestHandler)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, portfile)

    # Keystone parses sys.argv as its own command line (oslo.config).
    sys.argv = sys.argv[:1]
    from keystone.server import wsgi
    # wsgiref logs one line per request to stderr, the caller's log file.
    server.set_app(wsgi.initialize_public_application())
    sys.stderr.write("serve.py: serving on 127.0.0.1:%d\n" % server.server_address[1])
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
