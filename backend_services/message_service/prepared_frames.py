"""Frames written to the socket as they are: encoded once for every socket that gets them.

A group message goes to each member socket on the instance. Through plain ASGI each copy is an
awaited `send`: a writer task woken for every socket, an event dict, uvicorn framing the same
text again, then the write. Yet a server's frames are never masked (RFC 6455, section 5.1), and
without permessage-deflate they carry no per-connection state, so one encoding serves every
socket and the fan-out can write each socket's copy where it stands, in its own loop, as
Node's socket.io does.

`PreparedFramesProtocol` is uvicorn's websockets-sansio protocol offering one more ASGI
extension, `letschat.prepared_frames`. Its `write` puts encoded bytes on the transport at once,
or answers False when the socket cannot take them now: closing or closed, or its transport over
the high-water mark (a slow reader). Then the caller falls back to `send`, which waits for the
buffer to drain. A socket that negotiated compression is not offered the extension, and a server
without it (another ASGI server, Starlette's test client) gets everything through `send`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

EXTENSION = "letschat.prepared_frames"

# The first byte of a whole text frame: FIN, opcode 1.
_FIN_TEXT = 0x81

WritePrepared = Callable[[bytes], bool]


def encode_text_frame(text: str) -> bytes:
    """`text` as one unmasked, uncompressed WebSocket text frame."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        return bytes((_FIN_TEXT, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", _FIN_TEXT, 126, length) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, length) + payload


class Tally:
    """How many sockets frames of one kind were pushed to: a plain integer that a frame adds to
    where it is pushed, which the fan-out's hot path can afford (a call per socket would not)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class Prepared:
    """A frame many sockets get: its text, its `kind` (its frame type), the `tally` it is
    counted in, and its encoding, made once and shared by every socket that writes it."""

    __slots__ = ("kind", "tally", "text", "wire")

    def __init__(self, text: str, kind: str = "other", tally: Tally | None = None) -> None:
        self.text = text
        self.kind = kind
        self.tally = Tally() if tally is None else tally
        self.wire = encode_text_frame(text)


def wire_of(frame: str | Prepared) -> bytes:
    return frame.wire if isinstance(frame, Prepared) else encode_text_frame(frame)


def text_of(frame: str | Prepared) -> str:
    return frame.text if isinstance(frame, Prepared) else frame


def prepared_writer(scope: object) -> WritePrepared | None:
    """The extension's `write`, if the server offers it on this socket."""
    extensions = scope.get("extensions") if isinstance(scope, dict) else None
    offered = extensions.get(EXTENSION) if isinstance(extensions, dict) else None
    write = offered.get("write") if isinstance(offered, dict) else None
    return write if callable(write) else None


class PreparedFramesProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, offering `letschat.prepared_frames`."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # Accepted (101) and uncompressed: a compressed frame depends on the ones before it.
        if self.response.status_code == 101 and not self.conn.extensions:
            self.scope["extensions"][EXTENSION] = {"write": self.write_prepared}

    def write_prepared(self, frame: bytes) -> bool:
        """Write an encoded frame now; False if the socket cannot take it now (use `send`)."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        try:
            self.transport.write(frame)
        except (RuntimeError, OSError):  # Lost under us: the writer's `send` finds out.
            return False
        return True
