"""The plain-Python baseline: the same echo/sink server with selectors, one thread."""

from __future__ import annotations

import selectors
import socket
import struct
import sys


def main() -> None:
    sink = sys.argv[1] == "sink"
    lsock = socket.create_server(
        ("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0), backlog=1024
    )
    lsock.setblocking(False)
    print(lsock.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    state: dict[socket.socket, list[int]] = {}
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock is lsock:
                while True:
                    try:
                        conn, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(True)
                    sel.register(conn, selectors.EVENT_READ)
                    state[conn] = [0, 0]
                continue
            assert isinstance(sock, socket.socket)
            data = sock.recv(65536)
            if not data:
                if sink:
                    sock.sendall(struct.pack("<QQ", *state[sock]))
                sel.unregister(sock)
                del state[sock]
                sock.close()
            elif sink:
                state[sock][0] += len(data)
                state[sock][1] += sum(data)
            else:
                sock.sendall(data)


if __name__ == "__main__":
    main()
