"""Model tooling Chalice never packages: demo data, training, LiteRT conversion,
publishing, example requests."""
