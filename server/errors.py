"""Transport-free error types.

Runtimes and codecs raise these; each protocol router owns the table that turns them into a status
code and its own body shape. Keeping HTTP out of here is what lets the sklearn runtime stay unaware
of the wire, and lets one failure render as KServe's ``{"error": ...}`` or OpenAI's error object.
"""

from __future__ import annotations

#: How to get pandas (an optional extra), for every error about it missing: requests that need a
#: DataFrame (``server.codec``) and pickles that need it (``runtimes.sklearn``).
PANDAS_INSTALL = "pip install 'kserve-custom-runtime[sklearn,pandas]' (the kcr-sklearn image has it)"


#: Longest error message sent back: messages quote what the client sent (a value, a name), and a
#: 5 MB value must not come back in a 5 MB error.
MAX_MESSAGE_CHARS = 1000


def bounded(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message``, cut to ``limit`` characters with a note of how much was left out."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message) - limit} more characters)"


#: How to get gRPC (the ``grpc`` extra), for ``--enable-grpc`` without grpcio.
GRPC_INSTALL = "pip install 'kserve-custom-runtime[sklearn,grpc]' (the kcr-sklearn image has it)"


class KcrError(Exception):
    """Base class: ``message`` is what the client is shown, verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(KcrError):
    """The request is malformed or the model rejects its shape/values (KServe: InvalidInput)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ModelLacksCapability(InvalidInput):
    """The backend refused a feature this model does not have (Ollama: ``"x" does not support thinking``).

    ``capability`` names it (``thinking``, ``tools``, ``insert``, ``vision``); the wing that translated
    the request knows which of its own parameters asked for it, and names that one as ``param``.
    """

    def __init__(self, message: str, capability: str) -> None:
        super().__init__(message)
        self.capability = capability


class PayloadTooLarge(KcrError):
    """Body, element count or nesting beyond the configured limits."""


class RouteNotFound(KcrError):
    """No route serves this path (under a protocol's own prefix: answered in its error shape)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Invalid URL ({method} {bounded(path, 200)})")


class MethodNotAllowed(KcrError):
    """The path is served, but not for this method."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Method {method} is not allowed for {bounded(path, 200)}")


class ModelNotFound(KcrError):
    def __init__(self, name: str) -> None:
        # KServe's exact template, so clients matching on it keep working.
        super().__init__(f"Model with name {name} does not exist.")
        self.name = name


class ModelNotReady(KcrError):
    def __init__(self, name: str, detail: str | None = None) -> None:
        message = f"Model with name {name} is not ready."
        if detail:
            message += " " + detail
        super().__init__(message)
        self.name = name


class ServerNotReady(KcrError):
    def __init__(self, message: str = "Server is not ready.") -> None:
        super().__init__(message)


class UnsupportedOutput(InvalidInput):
    def __init__(self, output: str, model: str) -> None:
        super().__init__(f"Unexpected inference output '{output}' for model '{model}'")


class NotSupported(KcrError):
    """A feature KServe also answers with 501 (versioning, explainers)."""


class UnsupportedEncoding(InvalidInput):
    """A request body in a ``Content-Encoding`` the server cannot decode (415)."""


class InferenceFailed(KcrError):
    """The model itself failed on input we could not blame on the client."""


class Unauthorized(KcrError):
    def __init__(self, message: str = "Incorrect API key provided.") -> None:
        super().__init__(message)


class Overloaded(KcrError):
    """Too many requests queued; the client should come back after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnavailable(KcrError):
    """The backend (e.g. Ollama) refused the connection or said it is busy."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamTimeout(KcrError):
    """The backend did not answer (first token or total) within the configured time."""


class UpstreamError(KcrError):
    """The backend answered with something unusable (bad gateway) or an error of its own."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class ModelLoadError(KcrError):
    """A model could not be found or loaded at start-up; the CLI prints it as one line and exits 1."""
