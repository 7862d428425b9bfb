"""invsync's benchmark harness: ``make bench`` writes docs/benchmarks.md.

Not part of the pipeline and not part of ``make test``. Modules:

* :mod:`bench.machine` — the machine, library versions and load average of a measurement;
* :mod:`bench.fetch_bench` — Phase 1 fetch of 10,000 ASINs against the sandbox, beside
  :mod:`bench.replaced_design` (the system invsync replaces, run on the same sandbox);
* :mod:`bench.transform_bench` — extract + transform + validation on synthetic listings,
  each measurement in its own subprocess (time and peak RSS), beside a row-by-row SQLite
  baseline;
* :mod:`bench.load_bench` — calls per changed row against the lower bound, from the
  sandbox's ledger;
* :mod:`bench.report` — the markdown document; :mod:`bench.run` — the entry point.
"""
