"""What every browser test checks of the page it drives: no console error, no uncaught page error, no Python
traceback shown; a full-page screenshot kept in test-artifacts/ for a look after a failure."""

from __future__ import annotations

import contextlib
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@contextlib.contextmanager
def watched(page, request, height: int = 2400):
    """Drive `page` (1600 px wide, `height` tall, 30 s timeouts) and fail the test on an error it shows."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console error: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.set_viewport_size({"width": 1600, "height": height})
    page.set_default_timeout(30_000)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    assert page.get_by_text("Traceback").count() == 0, "a Python traceback is shown in the page"
    assert not problems, problems


def log_in(page, server, role: str = "analyst") -> str:
    """Open `server`'s page and log in as its first user of `role` (`server.logins`: name -> (role, password));
    the user's name."""
    import re

    user, password = next((n, p) for n, (r, p) in server.logins.items() if r == role)
    page.goto(server.url)
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=password]").press("Enter")
    page.wait_for_url(re.compile(r"/dashboard"))
    return user


def open_section(page, title: str, bar: str = ".analyst-sections"):
    """Click the button `title` of a bar of sections (`views.sections`: the analysts' sections, or a panel's charts
    with `bar=".policy-charts"`)."""
    page.locator(bar).get_by_role("button", name=title, exact=True).click()
