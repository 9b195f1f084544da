"""Host-side semantics on plain Python values: fd table, files, sockets, poll."""
