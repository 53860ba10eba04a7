"""What the browser tests share: Debian's Chromium and a watch on the page's console."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Messages Chromium prints that are not the page's errors (no system bus here).
IGNORED_CONSOLE = ("dbus", "Failed to connect to the bus")


def watch_console(page: Any, problems: list[str]) -> None:
    """Collect the page's console errors and warnings and its uncaught errors."""
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") and not any(s in m.text for s in IGNORED_CONSOLE)
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
