"""Lab 4 · Caching with Redis: coming soon."""

import streamlit as st

st.title("Lab 4 · Caching with Redis")
st.info("This lab is being built. Labs 1 and 2 are ready: start there.", icon="🚧")
