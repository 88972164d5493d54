"""Join a class: a learner types the code (or opens the instructor's link) and a display name."""

import streamlit as st

from source.web import classroom

st.title("👥 Join a class")
st.markdown(
    """
If your instructor runs this lab as a class, join it here with the **join code** on their screen (or open
the link, or scan the QR code: the code is then filled in for you). Pick a **display name**: a first name
or a nickname, nothing more. No email and no other personal data.

**What your instructor sees:** your display name, which page you are on and when you last clicked, how many
knowledge-check questions you answered and got right (and which wrong answers were given, counted across
the class), and the measurements your labs record. **Nobody else in the class sees any of it.** Your work
stays in your own sandbox, exactly as without a class; you may leave the class at any time (sidebar).
"""
)
classroom.join_panel()
