"""Import-and-render check for another Python: every page of the app renders on the embedded defaults.

Usage, from any folder: ``/path/to/python3.13 scripts/render_check.py`` with the app's requirements
installed for that interpreter (e.g. in a virtual environment). Exits non-zero on any exception.
"""

import os
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
pages = [
    "views/home.py",
    "views/lab1_data_models.py",
    "views/lab2_connectivity.py",
    "views/lab3_repository.py",
    "views/lab4_caching.py",
    "views/lab5_outbox.py",
    "views/create_exercise.py",
    "views/instructor.py",
]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
at.run()
for page in pages:
    at.switch_page(page).run()
    if at.exception or not at.title:
        sys.exit(f"{page}: {[e.value for e in at.exception] or 'no title'}")
at.switch_page("views/create_exercise.py").run()
at.button(key="cx_check").click().run()
if at.exception or at.error:
    sys.exit(f"create exercise: {[e.value for e in (*at.exception, *at.error)]}")
ran = any("What the check found" in h.value for h in at.header)
print(f"Python {sys.version.split()[0]}: all {len(pages)} pages rendered; the Create check ran: {ran}")
sys.exit(0 if ran else 1)
