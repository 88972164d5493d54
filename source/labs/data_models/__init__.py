"""Lab 1 · Data models: CRUD units of work, the cascade, the join, the schema drawn from metadata."""
