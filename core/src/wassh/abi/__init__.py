"""The guest boundary: the only code that touches guest memory or wasm values."""
