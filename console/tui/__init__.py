"""The Textual apps: the régulation console and the EHPAD nurse station.

A thin layer over :mod:`console.services`; the only package of ours that imports Textual.
"""
