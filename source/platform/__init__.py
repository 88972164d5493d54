"""The platform layer: settings, the event loop, engines, sandboxes and Redis. No Streamlit here."""
