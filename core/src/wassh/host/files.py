"""Preopened directories and the files opened beneath them."""

from __future__ import annotations

import os

from .objects import Filestat, OpenObject
from .wasi_defs import Filetype


class Directory(OpenObject):
    """A host directory; ``guest_path`` is set for preopens."""

    filetype = Filetype.DIRECTORY

    def __init__(self, dirfd: int, guest_path: str | None = None) -> None:
        super().__init__()
        self.dirfd = dirfd
        self.guest_path = guest_path

    def filestat(self) -> Filestat:
        st = os.fstat(self.dirfd)
        return Filestat(
            dev=st.st_dev, ino=st.st_ino, filetype=Filetype.DIRECTORY, nlink=st.st_nlink,
            size=st.st_size, atim=st.st_atime_ns, mtim=st.st_mtime_ns, ctim=st.st_ctime_ns,
        )

    def close(self) -> None:
        os.close(self.dirfd)


def open_preopen(host_path: str, guest_path: str) -> Directory:
    fd = os.open(host_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return Directory(fd, guest_path)
