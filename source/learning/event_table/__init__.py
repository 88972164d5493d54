"""The "Create" exercise: a learner's outbox/event table, designed in a form and checked for real.

``design`` validates the form (names, types from a list, defaults, roles); ``build`` turns
it into SQLAlchemy Core ``Table``/``Column``/``Index`` objects; ``probe`` creates the table
in the learner's sandbox, writes events, claims them and reads the plan; ``findings`` says
what is missing, why it matters and what would go wrong. No learner-written SQL ever runs.
"""
