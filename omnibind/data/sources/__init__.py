"""Raw readers of packaged data sources, one module per source, shared by the data builders
(``omnibind.data.builders``) and the evaluation datasets (``omnibind.eval.datasets``).

A reader knows files on disk and their official labels; it knows nothing of splits, prompts or
samples.
"""
