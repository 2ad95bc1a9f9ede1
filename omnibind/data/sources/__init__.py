"""Readers of raw labelled sources that install offline (WordNet, Openclipart, GCompris, scikit-image)."""
