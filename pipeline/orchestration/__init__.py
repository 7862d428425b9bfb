"""invsync under Dagster: many sellers, one partition each (docs/orchestration.md).

Optional: ``pip install 'invsync[dagster]'``. :mod:`.sellers` (``sellers.toml`` and each
seller's sealed workspace) and :mod:`.runner` (one seller's ``sync.run``) never import
Dagster; :mod:`.assets` builds the assets, job, schedules and sensors and
:mod:`.definitions` is the code location ``dagster dev`` loads.
"""
