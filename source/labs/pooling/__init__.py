"""Lab 2 · Async connectivity & pooling: a real pool loaded, timed out and compared with NullPool."""
