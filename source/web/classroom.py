"""Class mode on the page: the instructor's passcode, classes and live dashboard; a learner's join and Leave.

The instructor's side (on the Instructor page): without ``PLAB_INSTRUCTOR_PASSCODE`` the page says how to
enable class mode; with it, a passcode form unlocks class mode for this browser tab. Then: start a class
(a join code, a link and a QR code on a projector-sized panel), its live dashboard (one fragment that
redraws itself every :data:`REFRESH_S` seconds), projector mode (large type, "Learner n" instead of
names, no sidebar and no sandbox token in the address: the board opens at ``?board=<code>``), CSV
downloads and *End the class*. The learner's side: the join page (by link, ``?class=<code>``, or by
code), their class in the sidebar with *Leave*, and the hooks that tell their class what they do.
"""

from __future__ import annotations

import contextlib
import functools
import io
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urljoin

import segno
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from source import web
from source.course import COURSE
from source.learning.catalogue import AnyQuestion
from source.learning.classroom import classes, dashboard, export, feed, figures, membership, rules
from source.learning.classroom.answers import label_text
from source.learning.classroom.classes import ClassInfo
from source.learning.classroom.dashboard import Snapshot
from source.learning.classroom.passcode import PasscodeGate
from source.learning.classroom.store import ClassStore
from source.learning.event_table.example import PASSING_DESIGN, check_the_example
from source.platform.backends import Backends
from source.platform.outcome import Outcome
from source.platform.sandbox import Sandbox
from source.web.actions import act, button, show_outcome
from source.web.confirm import confirmed_button
from source.web.seats import fragment
from source.web.widgets import literal, whole_number_input

T = TypeVar("T")

#: How often the dashboard redraws itself (seconds).
REFRESH_S = 3
#: The join page's address and its query parameter (``/join?class=K7M2QX``).
JOIN_PATH, CLASS_PARAM = "join", "class"
#: Session state: class mode unlocked in this tab; the lab the dashboard plots.
UNLOCKED_KEY = "plab_class_mode_unlocked"
LAB_KEY = "ins_board_lab"
#: The one passcode gate of this process: wrong tries are slowed per client and in total.
GATE = PasscodeGate()
#: Pages by title (as app.py names them), so a visit can say which lab it was.
_LAB_BY_TITLE = {lab.title: lab.id for lab in COURSE.labs.values()}

#: Projector mode: larger type everywhere, and no sidebar (the sandbox's address and tools stay off the wall).
_PROJECTOR_CSS = """<style>
html { font-size: 125%; }
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"] {
  display: none;
}
</style>"""


def _store(b: Backends | None = None) -> ClassStore:
    return ClassStore((b or web.backends()).redis)


def _run(coro: Coroutine[Any, Any, T], b: Backends | None = None, timeout: float = 20.0) -> T:
    """Run ``coro`` on the app's event loop (the shared Redis client lives there): no sandbox needed."""
    return (b or web.backends()).runtime.run(coro, timeout=timeout)


def _act(outcome_key: str, action: Callable[[], str | Outcome | None]) -> None:
    """:func:`~source.web.actions.act` as a form's callback (Streamlit's callbacks return nothing)."""
    act(outcome_key, action)


# -- the learner's side ------------------------------------------------------------------------
def _open_sandbox() -> Sandbox | None:
    """The learner's sandbox if this session has one already: class mode never opens one just to look."""
    try:
        box, _ = web.backends().sandboxes.find(st.session_state.get(web.TOKEN_KEY))
    except Exception:  # noqa: BLE001 - the sidebar has said why the backends are missing
        return None
    return box


def note_visit(page: str) -> None:
    """Tell the learner's class which page they opened (``begin_run``); nothing for a learner in no class."""
    box = _open_sandbox()
    if box is None or not membership.may_be_seated(box):
        return
    with contextlib.suppress(Exception):  # a visit is never worth an error box
        box.run(feed.visited(box, page, _LAB_BY_TITLE.get(page)))


def join_panel() -> None:
    """The join page's panel: the learner's class (with Leave), or the join form (the link fills the code)."""
    box = _open_sandbox()
    seat = _seat(box) if box is not None else None
    said = st.session_state.get("join_outcome")
    show_outcome("join_outcome")  # a join just made says what the instructor will see: no second line for it
    if box is not None and seat is not None:
        if not (isinstance(said, Outcome) and said.kind == "success"):
            st.success(f"You are in **{seat.class_name}** as **{seat.name}**.", icon="👥")
        _leave_button(st, box, key="join_leave")
        st.caption("To join another class, type its code below: you leave this one when you join it.")
    linked = st.query_params.get(CLASS_PARAM, "")
    with st.form("join_form"):
        st.text_input(
            "Join code",
            value=linked[:12],
            max_chars=12,
            key="join_code",
            help="Six letters and digits, from your instructor's screen (there is no O, 0, I, 1 or L in a code).",
        )
        st.text_input(
            "Your display name",
            max_chars=rules.NAME_LENGTH[1],
            key="join_name",
            help="A first name or a nickname: the class needs no email and no other personal data.",
        )
        st.form_submit_button("Join the class", key="join_submit", on_click=_act, args=("join_outcome", _join))


def _join() -> str:
    code, name = st.session_state.get("join_code"), st.session_state.get("join_name")
    return web.run(membership.join(web.sandbox(), code, name))


def _seat(box: Sandbox) -> membership.Seat | None:
    """The learner's seat (looked up once per sandbox; then remembered)."""
    try:
        return box.run(membership.seat_of(box))
    except Exception:  # noqa: BLE001 - no class shown is better than an error box in every sidebar
        return None


def class_sidebar() -> None:
    """The learner's class in the sidebar, with Leave; nothing for a learner in no class (and no call)."""
    box = _open_sandbox()
    seat = membership.remembered(box) if box is not None else None
    if box is None or seat is None:
        if "class_leave_outcome" in st.session_state:  # the learner just left: say so where they clicked
            show_outcome("class_leave_outcome", st.sidebar)
        return
    with st.sidebar:
        st.subheader("Your class")
        st.caption(f"**{seat.class_name}**, as **{seat.name}**: your instructor sees your progress and measurements.")
        _leave_button(st, box, key="class_leave")


def _leave_button(where: Any, box: Sandbox, *, key: str) -> None:
    confirmed_button(
        where,
        "Leave the class",
        key=key,
        question="Your instructor will no longer see your progress or measurements. Your own work stays.",
        yes="Yes, leave",
        action=lambda: box.run(membership.leave(box)),
        help="Asks first, then takes you out of the class; your sandbox is not touched.",
    )


# -- the instructor's side -----------------------------------------------------------------------
def unlocked() -> bool:
    return bool(st.session_state.get(UNLOCKED_KEY))


def class_mode_sections() -> bool:
    """Everything of class mode on the Instructor page; True when the page shows the class only (projector)."""
    ok, b = web.attempt(web.backends)
    if not ok or b is None:
        return False
    board = st.query_params.get(web.BOARD_PARAM)
    if b.settings.instructor_passcode is None:
        st.info(
            "Class mode is off on this app. To turn it on, set `PLAB_INSTRUCTOR_PASSCODE` (in the app's environment, "
            "or as a root secret beside `DATABASE_URL`) and restart the app. Class mode lets you start a class "
            "with a join code and a QR code, and follow your learners' progress, answers and measurements live.",
            icon="🔒",
        )
        return False
    if not unlocked():
        passcode_panel()
        return bool(board)  # a board's address on a projector shows the passcode form, nothing of the sandbox
    show_outcome("ins_passcode_outcome")
    show_outcome("ins_class_end_outcome")  # a class just ended is no longer on the page to say so under
    button(st, "Lock class mode", key="ins_lock", action=_lock, help="Until the passcode is typed again, in this tab.")
    chosen = classes_panel(b, board)
    if chosen is None:
        return bool(board)
    projector = board == chosen.code
    if projector:
        st.html(_PROJECTOR_CSS)
    join_code_panel(chosen, large=projector)
    button(
        st,
        "Leave projector mode" if projector else "Show on the projector",
        key="ins_projector",
        action=functools.partial(_projector, None if projector else chosen.code),
        help="Projector mode: large type, learners as 'Learner n', no sidebar and no sandbox link in the address.",
    )
    live_board(chosen.code, projector)
    if not projector:
        downloads_panel(b, chosen.code)
        confirmed_button(
            st,
            "End the class",
            key="ins_class_end",
            question=f"Ending *{chosen.name}* deletes its roster, answers and measurements now (learners keep their "
            "own work).",
            yes="Yes, end it",
            action=lambda: _run(classes.end_class(_store(b), chosen.code), b),
            help="Asks first. A class also ends by itself when it expires.",
        )
    return projector


def passcode_panel() -> None:
    """The passcode form: a wrong passcode gets one sentence; repeated tries are slowed down."""
    with st.form("ins_passcode_form", clear_on_submit=True):
        st.text_input("Instructor passcode", type="password", key="ins_passcode", max_chars=200)
        st.form_submit_button("Unlock class mode", key="ins_passcode_submit", on_click=_unlock)
    show_outcome("ins_passcode_outcome")
    st.caption("Class mode shows your classes, their learners and answers, and the Create exercise's passing design.")


def _client() -> str:
    """Who is trying, as far as the server can tell: the connection's address, else this browser session."""
    address = None
    with contextlib.suppress(Exception):
        address = st.context.ip_address
    if isinstance(address, str) and address:
        return f"ip:{address}"
    ctx = get_script_run_ctx()
    return f"session:{ctx.session_id if ctx is not None else 'none'}"


def _unlock() -> None:
    """The passcode form's callback: the typed passcode is read once and never kept (the form clears it)."""
    verdict = GATE.check(web.backends().settings.instructor_passcode, st.session_state.get("ins_passcode"), _client())
    st.session_state["ins_passcode"] = ""  # the session keeps no copy of what was typed, right or wrong
    if verdict.ok:
        st.session_state[UNLOCKED_KEY] = True
    st.session_state["ins_passcode_outcome"] = Outcome(verdict.message, "success" if verdict.ok else "error")


def _lock() -> str:
    st.session_state.pop(UNLOCKED_KEY, None)
    st.query_params.pop(web.BOARD_PARAM, None)
    return "Class mode is locked in this tab: the passcode unlocks it again."


def _projector(code: str | None) -> None:
    """Into projector mode (the board's address: ``?board=<code>``, no sandbox token) or out of it."""
    if code is None:
        st.query_params.pop(web.BOARD_PARAM, None)
    else:
        st.query_params[web.BOARD_PARAM] = code
        st.query_params.pop(web.TOKEN_PARAM, None)


def classes_panel(b: Backends, board: str | None) -> ClassInfo | None:
    """Start a class; pick one of the running classes (the board's address picks it on a projector)."""
    ok, found = web.attempt(lambda: _run(classes.running(_store(b)), b))
    if not ok or found is None:
        return None
    by_code = {c.code: c for c in found}
    if board:  # a projector's address: that class, or nothing (never another class's names on the wall)
        ok, code = web.attempt(lambda: classes.parse_code(board))
        if ok and code in by_code:
            return by_code[str(code)]
        if ok:
            st.warning(f"No class with the code {code} is running (it may have ended).", icon="⚠️")
        button(st, "Leave projector mode", key="ins_projector", action=functools.partial(_projector, None))
        return None
    _start_form()
    if not found:
        st.caption(f"No class is running. At most {rules.MAX_CLASSES} classes run at once on this lab.")
        return None
    if st.session_state.get("ins_class") not in by_code:
        st.session_state["ins_class"] = found[0].code
    # The label must not change while the class runs: the browser keeps the chosen label, not the code.
    code = st.selectbox("Class", list(by_code), key="ins_class", format_func=lambda c: f"{by_code[c].name} · {c}")
    return by_code.get(str(code))


def _start_form() -> None:
    with st.expander("Start a class", expanded=not st.session_state.get("ins_class")), st.form("ins_class_form"):
        st.text_input("Class name", max_chars=rules.CLASS_NAME_LENGTH[1], key="ins_class_name")
        left, right = st.columns(2)
        left.number_input(
            "Runs for (hours)",
            value=rules.DEFAULT_HOURS,
            step=0.25,
            key="ins_class_hours",
            help=f"{rules.HOURS[0]:g} to {rules.HOURS[1]:g} hours; then the class and its data are deleted.",
        )
        whole_number_input(
            right,
            "Learners at most",
            (1, 10_000),
            rules.DEFAULT_MEMBERS,
            key="ins_class_cap",
            help=f"{rules.MEMBERS[0]} to {rules.MEMBERS[1]}.",
        )
        st.form_submit_button(
            "Start the class", key="ins_class_start", on_click=_act, args=("ins_class_outcome", _start)
        )
    show_outcome("ins_class_outcome")


def _start() -> str:
    state = st.session_state
    info = _run(
        classes.start_class(
            _store(), state.get("ins_class_name"), state.get("ins_class_hours"), state.get("ins_class_cap")
        )
    )
    state["ins_class"] = info.code
    return f"*{info.name}* is running: its join code is **{info.code}**, for {info.minutes_left()} minutes."


def join_link(code: str) -> str:
    """The address a learner opens to join ``code`` (absolute when the browser told the app its address)."""
    here = None
    with contextlib.suppress(Exception):
        here = st.context.url
    path = f"{JOIN_PATH}?{CLASS_PARAM}={code}"
    return urljoin(here, path) if here else f"/{path}"


#: The QR code's quiet zone, in modules.
QR_BORDER = 2


@functools.lru_cache(maxsize=64)
def qr_png(link: str, fit: int) -> tuple[bytes, int]:
    """The link as a QR code (PNG) as wide as fits in ``fit`` pixels, and its width in pixels.

    Each module is a whole number of pixels, black or white, and the image is shown at its own width:
    Streamlit would otherwise scale it down with blurred edges, and keep it as a JPEG.
    """
    qr = segno.make(link, error="m")
    modules = int(qr.symbol_size(scale=1, border=QR_BORDER)[0])
    scale = max(1, fit // modules)
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale, border=QR_BORDER)
    return out.getvalue(), modules * scale


def join_code_panel(info: ClassInfo, *, large: bool) -> None:
    """The projector-sized join panel: the class's name, its code in large type, the link and the QR code."""
    link = join_link(info.code)
    left, right = st.columns([3, 2], vertical_alignment="center")
    with left:
        st.subheader(info.name)
        st.markdown(f"Join at **{link}**, or open *Join a class* and type the code:")
        size = "clamp(3rem, 6.5vw, 7rem)" if large else "clamp(2.5rem, 4.5vw, 4.5rem)"
        st.html(
            f'<p aria-label="Join code {" ".join(info.code)}" style="font: 700 {size}/1.1 ui-monospace, monospace; '
            f'letter-spacing: .12em; white-space: nowrap; margin: .2em 0">{info.code}</p>'
        )
        st.caption(f"Up to {info.cap} learners. When the class ends, its roster, answers and measurements are deleted.")
    png, width = qr_png(link, 320 if large else 220)
    right.image(png, caption="Scan to join", width=width, output_format="PNG", alt=f"QR code of the join link {link}")


@fragment(run_every=REFRESH_S)
def live_board(code: str, projector: bool) -> None:
    """The class, redrawn every few seconds: roster, progress at a glance, answers, measurements."""
    if not unlocked():
        return
    lab = st.session_state.get(LAB_KEY) or "lab1"
    ok, shot = web.attempt(lambda: _run(dashboard.snapshot(_store(), code, lab)))
    if not ok:
        return
    if shot is None:
        st.info(f"The class {code} has ended or expired: its data is deleted.", icon="ℹ️")
        return
    now = time.time()
    stalled = sum(learner.stalled(now) for learner in shot.learners)
    c = st.columns(4)
    c[0].metric("Learners", f"{len(shot.learners)} / {shot.info.cap}")
    c[1].metric("Checks passed", f"{sum(sum(x.passed.values()) for x in shot.learners):,}")
    c[2].metric(
        "No progress lately", stalled, help=f"No check passed, measurement or exercise for {rules.STALLED_S // 60} min."
    )
    c[3].metric("Minutes left", shot.info.minutes_left(now))
    st.subheader("Roster and progress")
    if not shot.learners:
        st.caption("Nobody has joined yet.")
    else:
        _table(_roster(shot, projector, now), key="ins_board_roster", large=projector)
        st.caption(
            f"✓ visited, then checks passed out of the lab's questions; ⏳ no progress (a check passed, a "
            f"measurement, the exercise) for {rules.STALLED_S // 60} minutes or more."
        )
    _answers(shot, projector)
    _measurements(shot, projector)


def _table(rows: list[dict[str, Any]], *, key: str, large: bool) -> None:
    """A grid at the desk (compact, scrolls); on the projector a plain table, whose type grows with the page's.

    The plain table reads Markdown, so every cell is escaped: a display name shows exactly as typed.
    """
    if large:
        st.table([{name: literal(value) for name, value in row.items()} for row in rows], hide_index=True)
    else:
        st.dataframe(rows, hide_index=True, key=key)


def _last_active(at: float, now: float) -> str:
    minutes = int((now - at) // 60)
    return "just now" if minutes < 1 else f"{minutes} min ago"


def _roster(shot: Snapshot, anonymous: bool, now: float) -> list[dict[str, str]]:
    """One row per learner: who, where, when, then progress at a glance per lab."""
    rows = []
    for learner in shot.learners:
        row = {
            "Learner": learner.label(anonymous),
            "Page": learner.page or "–",
            "Last active": _last_active(learner.active, now),
            "Progress": "⏳ none for a while" if learner.stalled(now) else "",
        }
        for lab in COURSE.labs.values():
            if lab.id == "create":
                row["Create"] = "✅ done" if learner.exercise else ("✓" if "create" in learner.visited else "–")
            else:
                seen = "✓ " if lab.id in learner.visited else ""
                row[lab.title.split(" · ")[0]] = f"{seen}{learner.passed.get(lab.id, 0)}/{_checks(lab.id)}"
        rows.append(row)
    return rows


@functools.cache
def _questions() -> dict[str, AnyQuestion]:
    """Every question of the course by id (numeric ones as their locked stand-ins: same id, same prompt)."""
    return {q.id: q for lab in COURSE.labs for q in COURSE.questions_for(lab, [])}


def _checks(lab: str) -> int:
    return sum(1 for q in _questions().values() if q.lab == lab)


def _answers(shot: Snapshot, large: bool) -> None:
    st.subheader("Knowledge checks")
    rows = []
    for qid, question in _questions().items():
        totals = shot.questions.get(qid)
        if totals is None or not (totals.answered or totals.shown):
            continue
        wrong, why = label_text(question, totals.top_wrong) if totals.top_wrong else ("–", "")
        rows.append(
            {
                "Lab": COURSE.labs[question.lab].title.split(" · ")[0],
                "Question": question.prompt if len(question.prompt) <= 90 else question.prompt[:89] + "…",
                "Answered": totals.answered,
                "Right": totals.right,
                "Shown": totals.shown,
                "Most common wrong answer": wrong,
                "Learners": totals.top_wrong_count,
                "Why it is wrong": why,
            }
        )
    if not rows:
        st.caption("No question has been answered yet.")
        return
    _table(rows, key="ins_board_questions", large=large)
    st.caption(
        "Answered and right count learners (a right answer after the answer was shown does not count); "
        "each learner's wrong answers count once each."
    )


def _measurements(shot: Snapshot, anonymous: bool) -> None:
    st.subheader("The class's measurements")
    labs = [lab.id for lab in COURSE.labs.values()]
    st.radio(
        "Lab",
        labs,
        index=labs.index(shot.lab) if shot.lab in labs else 0,
        key=LAB_KEY,
        horizontal=True,
        format_func=lambda lab: COURSE.labs[lab].title,
    )
    spec = figures.plot_for(shot.lab or "")
    if not shot.runs:
        st.caption("No run of this lab yet: each learner's runs appear here as they make them.")
        return
    st.plotly_chart(
        figures.lab_figure(shot, anonymous=anonymous, large=anonymous),
        key="ins_board_chart",
        theme=None,
        config={"displayModeBar": False},
    )
    if spec is not None:
        st.caption(spec.caption)
    if far := figures.named_outliers(shot, anonymous=anonymous):
        st.markdown("**Far from the class:** " + "; ".join(str(literal(said)) for said in far) + ".")


def downloads_panel(b: Backends, code: str) -> None:
    """The class as CSV: read when the button is pressed, not on every refresh."""
    labs = [export.LabColumn(lab.id, lab.title, _checks(lab.id)) for lab in COURSE.labs.values()]

    def measurements_file() -> str:
        return export.measurements_csv(_run(export.read_all(_store(b), code), b))

    def progress_file() -> str:
        return export.progress_csv(_run(export.read_all(_store(b), code), b), labs, now=time.time())

    left, right = st.columns(2)
    left.download_button(
        "Download the class's measurements (CSV)",
        measurements_file,
        file_name=f"class-{code}-measurements.csv",
        mime="text/csv",
        key="ins_class_csv",
        on_click="ignore",
    )
    right.download_button(
        "Download the progress sheet (CSV)",
        progress_file,
        file_name=f"class-{code}-progress.csv",
        mime="text/csv",
        key="ins_class_progress_csv",
        on_click="ignore",
    )


def example_panel(box: Sandbox) -> None:
    """The Create exercise's passing design, run in the instructor's sandbox: only once class mode is unlocked.

    It is an answer, so a learner who opens this page without the passcode never sees it, and running it
    counts toward nobody's progress (not the instructor's, and no class's).
    """
    if not unlocked():
        return
    st.header("The Create exercise's answer")
    st.caption(
        "A design that passes every check, built in your sandbox like a learner's. It is an answer: keep it off "
        "the projector until the class has tried."
    )
    button(st, "Build and check the passing design", key="ins_example", action=_example(box))
    with st.expander("The passing design"):
        st.dataframe(PASSING_DESIGN["columns"], hide_index=True, key="ins_example_columns")
        st.caption(f"Index on {', '.join(PASSING_DESIGN['indexes'][0]['columns'])}; status checked against its values.")


def _example(box: Sandbox) -> Callable[[], str]:
    def run() -> str:
        return box.run(feed.muted(check_the_example()), timeout=120)

    return run
