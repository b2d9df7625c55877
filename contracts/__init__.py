"""Wire formats of merch-pipeline: our CloudEvents and the two upstream APIs.

Nothing here does I/O or imports from ``service`` or ``consumers``.

Evolution rules for the events we publish and consume
-----------------------------------------------------
1. A new field always has a default, so an old producer's event still decodes.
2. A field's type never changes, and a field is never renamed or removed within a version.
3. A breaking change is a new ``type`` version (``merch.design.approved.v2``), consumed side by
   side with the old one until every producer has moved.
4. Consumed events tolerate unknown fields (a newer producer may add some); settings and admin
   request bodies forbid them (a typo there is a mistake, not an extension).
"""
