"""Screenshot a built documentation page with a headless Chromium (Qt WebEngine).

    pip install PyQt6-WebEngine            # not a binaryvision dependency
    sphinx-build -b html docs docs/_build
    QT_QPA_PLATFORM=offscreen QTWEBENGINE_DISABLE_SANDBOX=1 \\
        python docs/screenshot.py docs/_build/tutorial.html tutorial.png [WIDTH HEIGHT]

Used to check that a page shows its figures as a reader's browser would.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PyQt6.QtCore import QSize, QTimer, QUrl
from PyQt6.QtWebEngineWidgets import QWebEngineView
from PyQt6.QtWidgets import QApplication


def main() -> int:
    """Load the page, wait for its images, save the window as a PNG."""
    page, out = Path(sys.argv[1]).resolve(), sys.argv[2]
    width, height = (int(v) for v in sys.argv[3:5]) if len(sys.argv) >= 5 else (1200, 2400)
    app = QApplication(sys.argv[:1])
    view = QWebEngineView()
    view.resize(QSize(width, height))
    result = {"ok": False}

    def loaded(ok: bool) -> None:
        def grab() -> None:
            result["ok"] = ok and view.grab().save(out)
            app.quit()

        QTimer.singleShot(3000, grab)  # let the figures decode and lay out

    view.loadFinished.connect(loaded)
    view.load(QUrl.fromLocalFile(str(page)))
    view.show()
    QTimer.singleShot(60_000, app.quit)
    app.exec()
    print(f"{'saved' if result['ok'] else 'FAILED'} {out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
