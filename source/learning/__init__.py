"""The learning layer: knowledge checks, progress, measurements, the Create exercise, instructor tools.

No Streamlit here: pages reach this package through ``source.web.checks`` and
``source.web.learning``. Modules import only what they need, so a lab package can import
``source.learning.measurements`` without pulling in the rest of this package.
"""
