"""wassh."""
