"""The plain-Python baseline: the same echo/sink servers as bench/guests/, one thread.

    pyserver.py echo|sink [PORT] [event|blocking]

``event`` (the default) is server.c's shape, a selectors loop over every socket;
``blocking`` is blocking_server.c's, one connection at a time on blocking sockets.
Sink protocol (as bench/guests/server.c): an 8-byte little-endian payload length,
then the payload; the reply (count, byte sum) goes out when the payload is complete.
"""

from __future__ import annotations

import selectors
import socket
import struct
import sys


class SinkState:
    __slots__ = ("count", "expect", "header", "total")

    def __init__(self) -> None:
        self.header = b""
        self.expect = -1
        self.count = 0
        self.total = 0


def serve_blocking(lsock: socket.socket, sink: bool) -> None:
    """Accept, then recv/send until EOF; then the next connection."""
    while True:
        conn, _ = lsock.accept()
        with conn:
            st = SinkState()
            while True:
                data = conn.recv(65536)
                if not data:
                    if sink and st.expect >= 0 and st.count != st.expect:
                        conn.sendall(struct.pack("<QQ", st.count, st.total))
                    break
                if not sink:
                    conn.sendall(data)
                    continue
                if len(st.header) < 8:
                    need = 8 - len(st.header)
                    st.header += data[:need]
                    data = data[need:]
                    if len(st.header) == 8:
                        st.expect = struct.unpack("<Q", st.header)[0]
                st.count += len(data)
                st.total += sum(data)
                if st.expect >= 0 and st.count == st.expect:
                    conn.sendall(struct.pack("<QQ", st.count, st.total))


def main() -> None:
    sink = sys.argv[1] == "sink"
    lsock = socket.create_server(
        ("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0), backlog=1024
    )
    print(lsock.getsockname()[1], flush=True)
    if len(sys.argv) > 3 and sys.argv[3] == "blocking":
        serve_blocking(lsock, sink)
        return
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    state: dict[socket.socket, SinkState] = {}
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
                    state[conn] = SinkState()
                continue
            assert isinstance(sock, socket.socket)
            data = sock.recv(65536)
            st = state[sock]
            if not data:
                if sink and st.expect >= 0 and st.count != st.expect:
                    sock.sendall(struct.pack("<QQ", st.count, st.total))
                sel.unregister(sock)
                del state[sock]
                sock.close()
            elif sink:
                if len(st.header) < 8:
                    need = 8 - len(st.header)
                    st.header += data[:need]
                    data = data[need:]
                    if len(st.header) == 8:
                        st.expect = struct.unpack("<Q", st.header)[0]
                st.count += len(data)
                st.total += sum(data)
                if st.expect >= 0 and st.count == st.expect:
                    sock.sendall(struct.pack("<QQ", st.count, st.total))
            else:
                sock.sendall(data)


if __name__ == "__main__":
    main()
