"""Raw readers of packaged data sources, one module per source (Fashion-MNIST, Tux Paint, easy-vqa,
BasicMotions, WordNet, Openclipart, GCompris, scikit-image photos), shared by the data builders
(``omnibind.data.builders``) and the evaluation datasets (``omnibind.eval.datasets``).

A reader knows files on disk and their official labels; it knows nothing of prompts or samples.
See docs/SOURCES.md for each source's licence, counts and label cleaning.
"""
