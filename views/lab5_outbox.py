"""Lab 5 · Outbox pattern: coming soon."""

import streamlit as st

st.title("Lab 5 · Outbox pattern")
st.info("This lab is being built. Labs 1 and 2 are ready: start there.", icon="🚧")
