"""wassh transport plugin: WebSocket relays (work in progress)."""
