"""Whether this script run is a fragment's own rerun: a click inside an ``st.fragment`` reran only that part;
and, from such a run, rerunning other fragments by their keys (:func:`request_fragments`).

A fragment that finds the click changed something drawn outside it (the count under a lab's
questions, the sidebar's progress, the controls for the user just picked) asks for the whole page
with ``st.rerun(scope="app")``, but only from its own rerun: in a whole-page run everything is
being drawn anyway.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData


def in_fragment_run() -> bool:
    """True while Streamlit reruns one fragment alone (not the whole page, not outside a server)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def alone_in_run() -> bool:
    """True while this script run reruns one fragment alone (its timer's rerun, or a click in it alone)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and len(ctx.fragment_ids_this_run or []) == 1)


def request_fragments(keys: list[str]) -> None:
    """From a fragment's own run: stop it, and rerun the fragments drawn with these keys instead.

    ``st.rerun(keys)`` does this from a widget's callback only. A job's progress panel, rerun by its
    timer, is no callback: when it finds the job ended, the panels that show the result (the job's
    section, which draws the progress no more, and those that read the result) are rerun the way
    Streamlit reruns keyed fragments for a callback (Streamlit 1.67's script runner: its request, not a
    public call; :func:`source.web.seats.redraw` draws the whole page if a later one refuses it). Raises
    ``StreamlitAPIException`` for a key no fragment of the last run was drawn with.
    """
    ctx = get_script_run_ctx()
    if ctx is None or ctx.script_requests is None:
        return
    queue = ctx.fragment_storage.resolve_target(keys)
    ctx.script_requests.request_rerun(
        RerunData(
            query_string=ctx.query_string,
            page_script_hash=ctx.page_script_hash,
            fragment_id_queue=queue,
            is_fragment_scoped_rerun=True,
            cached_message_hashes=ctx.cached_message_hashes,
            context_info=ctx.context_info,
        )
    )
    st.empty()  # a yield point: the script runner stops this run here and starts the one just asked for
