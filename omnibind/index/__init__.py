"""Media out by retrieval (ImageBind-style cross-modal search): any modality in, the nearest media out.

``store.py`` (``MediaIndex``: vectors in FAISS, saved atomically), ``build.py`` (a folder → an
index, incremental by content hash), ``search.py`` (queries → hits; what ``Model.search``,
``omnibind search`` and ``/v1/search`` call), ``cli.py`` (``omnibind index …``, ``omnibind search``).
"""
