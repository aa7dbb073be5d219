"""A small blocking HTTP client over wasi:http for componentize-py plugins.

The host enforces the plugin's `http` grants; a refused request comes back
as `HttpError` with `FailureReason.DENIED`.
"""

from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler, streams
from wit_world.imports import wasi_http_types as http
from wit_world.imports.lookout_plugin_types import FailureReason

MAX_BODY = 4 * 1024 * 1024


class HttpError(Exception):
    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def reason_of(code):
    """The probe failure reason for a wasi:http error code."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name == "HttpRequestDenied":
        return FailureReason.DENIED, "request denied by the sandbox (no http grant for this host)"
    if name.startswith("Dns") or name == "DestinationNotFound":
        return FailureReason.DNS, f"name lookup failed ({name})"
    if name.startswith("Tls"):
        return FailureReason.TLS, f"TLS failed ({name})"
    if name.endswith("Timeout"):
        return FailureReason.TIMEOUT, f"timed out ({name})"
    if name.startswith("Connection") or name.startswith("Destination"):
        return FailureReason.CONNECT, f"connection failed ({name})"
    return FailureReason.PROTOCOL, f"HTTP failed ({name})"


def request(method, url, headers, timeout_ms, body=None):
    """Sends one request; returns (status, body bytes)."""
    parts = urlsplit(url)
    fields = http.Fields.from_list([(k.lower(), v.encode()) for k, v in headers.items()])
    outgoing = http.OutgoingRequest(fields)
    outgoing.set_method({"GET": http.Method_Get(), "POST": http.Method_Post(), "PUT": http.Method_Put()}[method])
    outgoing.set_scheme(http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http())
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    options = http.RequestOptions()
    nanos = timeout_ms * 1_000_000
    options.set_connect_timeout(nanos)
    options.set_first_byte_timeout(nanos)
    options.set_between_bytes_timeout(nanos)
    outgoing_body = outgoing.body()
    try:
        future = outgoing_handler.handle(outgoing, options)
    except Err as error:
        raise HttpError(*reason_of(error.value))
    # A request the host refuses (no grant, no connection) closes the body
    # stream: stop writing, and let the response say why.
    try:
        if body is not None:
            stream = outgoing_body.write()
            for start in range(0, len(body), 4096):
                stream.blocking_write_and_flush(body[start:start + 4096])
            stream.__exit__(None, None, None)
        http.OutgoingBody.finish(outgoing_body, None)
    except Err:
        pass
    future.subscribe().block()
    outcome = future.get()
    if outcome is None or isinstance(outcome, Err):
        raise HttpError(FailureReason.OTHER, "no response")
    response = outcome.value
    if isinstance(response, Err):
        raise HttpError(*reason_of(response.value))
    response = response.value
    status = response.status()
    incoming = response.consume()
    stream = incoming.stream()
    chunks = []
    size = 0
    while True:
        try:
            chunk = stream.blocking_read(65536)
        except Err as error:
            if isinstance(error.value, streams.StreamError_Closed):
                break
            raise HttpError(FailureReason.CONNECT, "the connection failed while reading the body")
        size += len(chunk)
        if size > MAX_BODY:
            raise HttpError(FailureReason.BODY, f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return status, b"".join(chunks)
