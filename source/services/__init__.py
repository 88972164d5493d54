"""The service layer: units of work on the current sandbox that several labs (and a notebook) share.

``users`` creates, lists, edits and deletes users, each in one transaction with its domain
event; ``samples`` writes the course story's sample data. Labs build on these; they never
import one another.
"""
