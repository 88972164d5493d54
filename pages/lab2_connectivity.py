"""Placeholder."""

import streamlit as st

st.title("lab2_connectivity")
