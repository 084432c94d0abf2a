"""The status page: server-rendered HTML over the status API, for people with a browser.

* :func:`list_page` — ``GET /api/ui``: counts per state, the oldest waiting file, recent
  failures, the ledger filtered by state and prefix (paged), audio hours and cost.
* :func:`file_page` — ``GET /api/ui/files/{path}``: one file's versions and events, the first
  lines of its transcript, download links (short-lived read-only SAS) and re-run / cancel.

``links`` builds every URL (carrying ``?code=``), ``pages`` the view models, ``render`` the
HTML (Jinja2, autoescaped) from ``templates/``.
"""

from shared.http.ui.handlers import file_page, list_page, problem_page

__all__ = ["file_page", "list_page", "problem_page"]
