"""Inspect page (placeholder: a colleague builds model inspection here)."""

import streamlit as st

st.title("Inspect")
st.info("Coming next: inspect a trained model: per-class accuracy, confusion matrix, and which frames "
        "DiffRes kept for each prediction on the current sound.", icon=":material/construction:")
