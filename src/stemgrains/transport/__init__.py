"""transport stage."""
