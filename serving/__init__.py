"""Serving: model files on disk, the OpenAI-compatible client, the embedded and vLLM backends.

Imports none of the other parts; torch and transformers only inside the functions that need them."""
