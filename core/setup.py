"""The compiled fast path, built when a C compiler is at hand.

Everything else about the distribution is in pyproject.toml. ``optional=True``:
without a compiler (or Python headers) the build warns and goes on, and wassh
runs on its pure-Python host calls (``wassh.fastpath.built()`` tells which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "wassh._fastpath",
            sources=["src/wassh/_fastpath.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-fvisibility=hidden"],
            optional=True,
        )
    ]
)
