"""The README's promises, checked: its embedding example runs as written."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest
from guestbuild import build_guest

ROOT = Path(__file__).parent.parent


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_embedding_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = next(b for b in _python_blocks() if "wassh.run(" in b)
    wasm = build_guest(ROOT / "examples" / "hello_client.c", sdk=True)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
            conn.sendall(b"got: " + data)

    threading.Thread(target=serve, daemon=True).start()
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "hello_client.wasm").write_bytes(wasm.read_bytes())
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    exec(compile(example.replace('"8080"', f'"{port}"'), "README.md", "exec"), {})
    assert capsys.readouterr().out == "0 got: hello from a WebAssembly guest\n\n"
    server.close()
