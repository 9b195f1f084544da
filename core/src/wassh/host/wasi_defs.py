"""WASI preview1 constants used by host objects (numbers from the preview1 spec)."""

from __future__ import annotations

import enum


class Filetype(enum.IntEnum):
    UNKNOWN = 0
    BLOCK_DEVICE = 1
    CHARACTER_DEVICE = 2
    DIRECTORY = 3
    REGULAR_FILE = 4
    SOCKET_DGRAM = 5
    SOCKET_STREAM = 6
    SYMBOLIC_LINK = 7


class FdFlags(enum.IntFlag):
    APPEND = 1
    DSYNC = 2
    NONBLOCK = 4
    RSYNC = 8
    SYNC = 16


class Rights(enum.IntFlag):
    FD_DATASYNC = 1 << 0
    FD_READ = 1 << 1
    FD_SEEK = 1 << 2
    FD_FDSTAT_SET_FLAGS = 1 << 3
    FD_SYNC = 1 << 4
    FD_TELL = 1 << 5
    FD_WRITE = 1 << 6
    FD_ADVISE = 1 << 7
    FD_ALLOCATE = 1 << 8
    PATH_CREATE_DIRECTORY = 1 << 9
    PATH_CREATE_FILE = 1 << 10
    PATH_LINK_SOURCE = 1 << 11
    PATH_LINK_TARGET = 1 << 12
    PATH_OPEN = 1 << 13
    FD_READDIR = 1 << 14
    PATH_READLINK = 1 << 15
    PATH_RENAME_SOURCE = 1 << 16
    PATH_RENAME_TARGET = 1 << 17
    PATH_FILESTAT_GET = 1 << 18
    PATH_FILESTAT_SET_SIZE = 1 << 19
    PATH_FILESTAT_SET_TIMES = 1 << 20
    FD_FILESTAT_GET = 1 << 21
    FD_FILESTAT_SET_SIZE = 1 << 22
    FD_FILESTAT_SET_TIMES = 1 << 23
    PATH_SYMLINK = 1 << 24
    PATH_REMOVE_DIRECTORY = 1 << 25
    PATH_UNLINK_FILE = 1 << 26
    POLL_FD_READWRITE = 1 << 27
    SOCK_SHUTDOWN = 1 << 28
    SOCK_ACCEPT = 1 << 29


ALL_RIGHTS = (1 << 30) - 1
SOCKET_RIGHTS = int(
    Rights.FD_READ | Rights.FD_WRITE | Rights.POLL_FD_READWRITE | Rights.SOCK_SHUTDOWN
)
STDIO_RIGHTS = int(
    Rights.FD_READ
    | Rights.FD_WRITE
    | Rights.FD_FDSTAT_SET_FLAGS
    | Rights.POLL_FD_READWRITE
    | Rights.FD_FILESTAT_GET
)

# poll_oneoff event types and flags
EVENTTYPE_CLOCK = 0
EVENTTYPE_FD_READ = 1
EVENTTYPE_FD_WRITE = 2
EVENT_FD_READWRITE_HANGUP = 1
SUBCLOCKFLAG_ABSTIME = 1

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME = 2
CLOCK_THREAD_CPUTIME = 3

# sdflags / riflags / roflags
SHUT_RD = 1
SHUT_WR = 2
RECV_PEEK = 1
RECV_WAITALL = 2
RECV_DATA_TRUNCATED = 1
