"""Precipitation from geostationary infrared (MTCF; Himawari AHI → GPM IMERG rain class + rate).

Readers (Himawari HSD, JAXA P-Tree, IMERG), CF time, writers, regridding, ``prepare`` (scans +
granules → tile store), the tile-store dataset, the SYNTHETIC generator, the GPI-like baseline,
rain figures, the demo and the ``mtdense`` verbs (``plugin.py``, ``cli.py``).
"""
