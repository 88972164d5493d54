"""Lab 3: the repository pattern and the N+1 problem, counted, located, plotted and guarded."""
