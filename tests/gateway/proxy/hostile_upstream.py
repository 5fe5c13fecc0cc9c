"""A hostile upstream on a loopback port, in its own process: ``python hostile_upstream.py PORT``.

A bare asyncio HTTP/1.1 server (standard library only, so it starts fast) that answers by the
first path segment:

- ``/huge-event``: one 64 MB event-stream event with no blank line;
- ``/huge-json``: a 300 MB JSON reply with its Content-Length; ``/huge-json-chunked``: the same
  without one;
- ``/drip``: a JSON reply dripping one byte a second, without a Content-Length;
- ``/redirect-away``: 302 to another host (Location and Content-Location);
- ``/redirect-inside``: 302 to a path under its own base, ``/redirect-inside/next?page=2``;
- anything else: a small JSON reply at once.

Bodies are produced lazily, one 64 KB piece at a time: the server never holds a big body. A
write to a client that has gone away ends the reply.
"""

from __future__ import annotations

import asyncio
import sys

MB = 1024 * 1024
PIECE = 64 * 1024
HUGE_EVENT_BYTES = 64 * MB
HUGE_JSON_BYTES = 300 * MB
_JSON_HEAD = b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret_tool"}],"pad":"'
_JSON_TAIL = b'"}}'


async def _read_request(reader: asyncio.StreamReader) -> str:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return request_line.split(" ")[1]


def _head(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers), "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def _huge_event(writer: asyncio.StreamWriter) -> None:
    writer.write(_head("200 OK", [("Content-Type", "text/event-stream")]) + b"data: ")
    piece = b"x" * PIECE
    for _ in range(HUGE_EVENT_BYTES // PIECE):
        writer.write(piece)
        await writer.drain()


async def _huge_json(writer: asyncio.StreamWriter, *, declared: bool) -> None:
    pad = HUGE_JSON_BYTES - len(_JSON_HEAD) - len(_JSON_TAIL)
    headers = [("Content-Type", "application/json")]
    headers.append(("Content-Length", str(HUGE_JSON_BYTES)) if declared else ("Transfer-Encoding", "chunked"))
    writer.write(_head("200 OK", headers))
    piece = b"a" * PIECE
    parts = [_JSON_HEAD, *([piece] * (pad // PIECE)), b"a" * (pad % PIECE), _JSON_TAIL]
    for part in parts:
        writer.write(part if declared else b"%x\r\n%s\r\n" % (len(part), part))
        await writer.drain()
    if not declared:
        writer.write(b"0\r\n\r\n")


async def _drip(writer: asyncio.StreamWriter) -> None:
    writer.write(_head("200 OK", [("Content-Type", "application/json")]))
    for byte in b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}' + b" " * 100:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1)


async def _redirect(writer: asyncio.StreamWriter, location: str, content_location: str) -> None:
    headers = [("Location", location), ("Content-Location", content_location), ("Content-Length", "0")]
    writer.write(_head("302 Found", headers))


async def _small(writer: asyncio.StreamWriter) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}'
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    writer.write(_head("200 OK", headers) + body)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        path = await _read_request(reader)
        kind = path.split("?")[0].split("/")[1]
        if kind == "huge-event":
            await _huge_event(writer)
        elif kind in ("huge-json", "huge-json-chunked"):
            await _huge_json(writer, declared=kind == "huge-json")
        elif kind == "drip":
            await _drip(writer)
        elif kind == "redirect-away":
            await _redirect(writer, "http://elsewhere.example:8080/steal?x=1", "https://elsewhere.example/")
        elif kind == "redirect-inside":
            await _redirect(writer, "/redirect-inside/next?page=2", "/other-base/x")
        else:
            await _small(writer)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # the gateway hung up on us: that is the point
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
