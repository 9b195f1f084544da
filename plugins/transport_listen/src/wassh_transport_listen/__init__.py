"""wassh transport plugin: listening sockets, UDP and AF_UNIX (work in progress)."""
