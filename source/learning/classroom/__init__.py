"""Class mode: an instructor's class, its learners and their live aggregates, kept in Redis under ``plab:class:``.

No Streamlit here: the web layer (``source/web/classroom.py``) draws it. The modules, bottom up:
``rules`` (caps, codes, names), ``keys`` (where each piece lives), ``store`` (the shared client and
its budget), ``scripts`` (the atomic updates), ``classes`` (start, list, end), ``membership``
(join, leave, which class a sandbox is in), ``feed`` (what a member's clicks add), ``dashboard``
(what the instructor reads), ``figures`` and ``export`` (plots and CSV), ``passcode`` (the gate).
"""
