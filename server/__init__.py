"""kserve-custom-runtime: the protocol-neutral core (settings, CLI, model interface, registry, errors,
metrics, lifecycle), the protocol wings (``server.kserve``, ``server.openai``), and the web plumbing
they share (``server.web``). ``server.app.create_app`` composes them; see docs/development.md.
"""
