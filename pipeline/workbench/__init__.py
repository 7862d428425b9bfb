"""The local review workbench: one page for a run's changes, static or served on 127.0.0.1.

* :mod:`pipeline.workbench.render` — the page's model (:class:`~.render.ReviewPage`), built
  from the run's diff frames, what the next load would send, and the one Jinja2 template
  rendered static (``review.html``) or interactive (served).
* :mod:`pipeline.workbench.server` — the server behind ``invsync review --serve``: a
  one-time token, decisions into :mod:`pipeline.decisions`, never the warehouse.
* :mod:`pipeline.workbench.exports` — CSV exports with formula cells neutralised.
"""
