"""Whether this script run is a fragment's own rerun: a click inside an ``st.fragment`` reran only that part.

A fragment that finds the click changed something drawn outside it (the count under a lab's
questions, the sidebar's progress, the controls for the user just picked) asks for the whole page
with ``st.rerun(scope="app")``, but only from its own rerun: in a whole-page run everything is
being drawn anyway.
"""

from __future__ import annotations

from streamlit.runtime.scriptrunner import get_script_run_ctx


def in_fragment_run() -> bool:
    """True while Streamlit reruns one fragment alone (not the whole page, not outside a server)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)
