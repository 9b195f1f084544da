"""Wrong calls of the embedding API that ``mypy --strict`` reports, each where marked.

Each marked line ends in an ``# E:`` comment giving text that mypy's report for the
line contains; ``tests/test_embedding_types.py`` checks every marked line is reported
and no other.
Never run: the same calls are ``TypeError`` at run time, before the guest starts.
"""

from __future__ import annotations

import io

import wassh


async def wrong_run() -> None:
    await wassh.run("guest.wasm", "upper")  # E: Argument 2 to "run"
    await wassh.run("guest.wasm", stdn=b"")  # E: Unexpected keyword argument "stdn"
    await wassh.run("guest.wasm", stdin="text")  # E: Argument "stdin" to "run"
    await wassh.run("guest.wasm", env={"A": 1})  # E: Dict entry 0 has incompatible type
    await wassh.run("guest.wasm", trio_token=None)  # E: Unexpected keyword argument "trio_token"


def wrong_run_sync() -> None:
    wassh.run_sync("guest.wasm", argv="upper")  # E: Argument "argv" to "run_sync"
    wassh.run_sync(b"guest.wasm")  # E: Argument 1 to "run_sync"
    wassh.run_sync("guest.wasm", ["guest"], stdn=b"")  # E: Unexpected keyword argument "stdn"
    wassh.run_sync("guest.wasm", stdin=io.StringIO("text").read())  # E: Argument "stdin"
    wassh.run_sync("guest.wasm", stdout="out.txt")  # E: Argument "stdout" to "run_sync"
    wassh.run_sync("guest.wasm", stderr=b"")  # E: Argument "stderr" to "run_sync"
    wassh.run_sync("guest.wasm", env=[("A", "1")])  # E: Argument "env" to "run_sync"
    wassh.run_sync("guest.wasm", env={1: "one"})  # E: Dict entry 0 has incompatible type
    wassh.run_sync("guest.wasm", dirs={"/tmp": "/tmp"})  # E: Argument "dirs" to "run_sync"
    wassh.run_sync("guest.wasm", dirs=[("/tmp",)])  # E: List item 0 has incompatible type
    wassh.run_sync("guest.wasm", hosts=[("a.test", "127.0.0.1")])  # E: Argument "hosts"
    wassh.run_sync("guest.wasm", hosts={"a.test": 127})  # E: Dict entry 0 has incompatible type
    wassh.run_sync("guest.wasm", block="tcp")  # E: Argument "block" to "run_sync"
    wassh.run_sync("guest.wasm", block=[1])  # E: List item 0 has incompatible type
    wassh.run_sync("guest.wasm", plugins=None)  # E: Argument "plugins" to "run_sync"
    wassh.run_sync("guest.wasm", entry_points="yes")  # E: Argument "entry_points"
    wassh.run_sync("guest.wasm", config={"connect_timeout": 1.0})  # E: Argument "config"
    wassh.run_sync("guest.wasm", trace=None)  # E: Argument "trace" to "run_sync"
    wassh.run_sync("guest.wasm", dev="no")  # E: Argument "dev" to "run_sync"
    wassh.run_sync("guest.wasm", max_memory="64M")  # E: Argument "max_memory" to "run_sync"
    wassh.run_sync("guest.wasm", max_memory=1.5)  # E: Argument "max_memory" to "run_sync"
    wassh.run_sync("guest.wasm", events=42)  # E: Argument "events" to "run_sync"
    wassh.run_sync("guest.wasm", settings={"tcp": 1})  # E: Dict entry 0 has incompatible type
    wassh.run_sync("guest.wasm", programs={"x": 1})  # E: Dict entry 0 has incompatible type
    wassh.run_sync("guest.wasm", programs=[("x", "x.wasm")])  # E: Argument "programs"


def wrong_prepare() -> None:
    wassh.prepare("guest.wasm", "upper")  # E: Argument 2 to "prepare"
    wassh.prepare("guest.wasm", stdn=b"")  # E: Unexpected keyword argument "stdn"
    wassh.prepare("guest.wasm", stdin="text")  # E: Argument "stdin" to "prepare"
    wassh.prepare("guest.wasm", stdin=1.5)  # E: Argument "stdin" to "prepare"
    wassh.prepare("guest.wasm", stdout=b"")  # E: Argument "stdout" to "prepare"
    wassh.prepare("guest.wasm", env={"A": 1})  # E: Dict entry 0 has incompatible type
    wassh.prepare("guest.wasm", trio_token="token")  # E: Argument "trio_token" to "prepare"
    wassh.prepare("guest.wasm", events="log")  # E: Argument "events" to "prepare"
    wassh.prepare("guest.wasm", max_memory=None, config=1)  # E: Argument "config" to "prepare"
