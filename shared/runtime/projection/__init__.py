"""Projections: the consumer loop, the view protocol and its apply transaction, dead letters, view tables."""
