"""The domain layer: the InnovateAI models, the DTOs that cross to pages, and the repositories."""
