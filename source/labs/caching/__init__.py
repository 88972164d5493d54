"""Lab 4: caching with Redis — read-through with TTL, invalidation, real counts, stampede
protection, Redis going down, strategies compared, and Redis's data structures."""
