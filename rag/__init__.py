"""Offline question answering over a document corpus, with exact-span citations.

Importing this package is cheap on purpose: torch, llama.cpp and gradio load only
when a command actually needs them.
"""

__version__ = "0.1.0"
