"""A small TCP server for the demo: greets each client and echoes what it says."""

import socket
import sys

srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)  # the port, for the demo script
while True:
    conn, peer = srv.accept()
    with conn:
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
        conn.sendall(
            b"server at 127.0.0.1 says hi to %s:%d\nyou said: %s"
            % (peer[0].encode(), peer[1], data)
        )
    if "--once" in sys.argv:
        break
