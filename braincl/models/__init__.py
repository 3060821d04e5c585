"""Backbones (registered in ``braincl.registry.BACKBONES``) and the incremental network."""
