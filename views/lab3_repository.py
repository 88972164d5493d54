"""Lab 3 · Repository pattern & N+1: coming soon."""

import streamlit as st

st.title("Lab 3 · Repository pattern & N+1")
st.info("This lab is being built. Labs 1 and 2 are ready: start there.", icon="🚧")
