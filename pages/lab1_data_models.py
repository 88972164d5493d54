"""Placeholder."""

import streamlit as st

st.title("lab1_data_models")
