"""Read hunt's inputs: find the files, decompress them, and yield the candidate CloudTrail records.

Accepted shapes (any of them optionally gzip-compressed, recognised by the gzip magic bytes, not the name):
- a CloudTrail log file as delivered to S3, ``{"Records": [...]}`` (one line, or pretty-printed);
- JSON lines of records or of EventBridge envelopes;
- a single JSON array of records or envelopes, or a single record or envelope, pretty-printed or not.

Speed comes from not parsing what cannot match. A record the rule accepts has an ``eventName`` starting
with ``UpdateFunctionCode``, so its bytes hold that text, or a ``\\u00XX`` escape if a tool escaped ASCII.
A file (or JSON line) holding neither is only decompressed (which checks the gzip CRC and length) and
given a cheap shape check (it must start and end like JSON), never parsed: a syntax error deep inside
such a file goes unreported, which is the price of hunting months of archives at the speed of ``zcat``.

Errors never stop the scan: each is reported through a callback with its place (file, line, or record
index) and a reason that never echoes the input's content.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from codewatch.records import MalformedRecord, iter_records

try:
    import orjson

    _fast_loads: Callable[[bytes], Any] = orjson.loads
    _FastError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson is a declared dependency; stay correct without it
    _fast_loads = json.loads
    _FastError = ValueError

#: A report callback: ``report(place, reason)``.
Report = Callable[[str, str], None]

MARKER = b"UpdateFunctionCode"
_ASCII_ESCAPE = b"\\u00"  # an escaped ASCII character could spell the marker: such text is parsed, not skipped
GZIP_MAGIC = b"\x1f\x8b"
READ_SIZE = 4 << 20  # bytes read (and, for gzip, decompressed) at a time: bounds memory on huge JSON lines files
_WHITESPACE = b" \t\r\n"
# One JSON document (a whole file, or one line of JSON lines) is parsed in memory; CloudTrail's files are a
# few MB at most. The cap keeps a gzip bomb or a wrong file from taking all memory.
MAX_DOCUMENT_BYTES = 256 << 20
TOO_LARGE = f"a single JSON document over {MAX_DOCUMENT_BYTES >> 20} MiB (write big inputs as JSON lines)"


def may_match(data: bytes) -> bool:
    """False only when no record in ``data`` can be an ``UpdateFunctionCode`` call."""
    return MARKER in data or _ASCII_ESCAPE in data


# ---------------------------------------------------------------------------------------------- files


def iter_input_files(paths: Iterable[str], report: Report) -> Iterator[str]:
    """Each file named, and each non-hidden file under each folder named (recursively, in sorted order).

    Hidden files and folders (a leading dot) inside folders are skipped: they are tool state, not logs.
    """
    for path in paths:
        try:
            is_dir = os.path.isdir(path)
            if not is_dir:
                os.stat(path)  # raises for a missing path or one we may not look at
        except OSError as error:
            report(path, _os_reason(error))
            continue
        if not is_dir:
            yield path
            continue

        def walk_error(error: OSError, top: str = path) -> None:
            report(error.filename or top, _os_reason(error))

        for folder, folders, files in os.walk(path, onerror=walk_error):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    yield os.path.join(folder, name)


def _os_reason(error: OSError) -> str:
    return (error.strerror or error.__class__.__name__).lower()


class ReadError(Exception):
    """A file that cannot be read or decompressed; the message is the reason."""


def iter_chunks(path: str) -> Iterator[bytes]:
    """The file's content, decompressed when it is gzip (any number of members), in pieces of bounded size."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(READ_SIZE)
            if head[:2] == GZIP_MAGIC:
                yield from _gunzip(head, stream)
                return
            while head:
                yield head
                head = stream.read(READ_SIZE)
    except OSError as error:
        raise ReadError(_os_reason(error)) from None


def _gunzip(head: bytes, stream: Any) -> Iterator[bytes]:
    # zlib checks each member's CRC-32 and length itself when wbits selects the gzip format (16 + 15).
    decompressor = zlib.decompressobj(wbits=31)
    pending, at_end = head, False
    try:
        while True:
            if not pending and not at_end:
                pending = stream.read(READ_SIZE)
                at_end = not pending
            # max_length bounds what one call inflates, so a gzip bomb costs time, not memory. With input
            # exhausted, calling again with b"" drains output zlib still holds.
            out = decompressor.decompress(pending, READ_SIZE)
            pending = decompressor.unconsumed_tail
            if out:
                yield out
            if decompressor.eof:
                # Concatenated members (``cat a.gz b.gz``) are one valid gzip file; zero padding is tolerated.
                rest = decompressor.unused_data.lstrip(b"\x00")
                while not rest and not at_end:
                    more = stream.read(READ_SIZE)
                    at_end = not more
                    rest = more.lstrip(b"\x00")
                if not rest:
                    return
                if rest[:2] != GZIP_MAGIC:
                    raise ReadError("trailing garbage after the gzip data")
                decompressor, pending = zlib.decompressobj(wbits=31), rest
            elif at_end and not out and not pending:
                raise ReadError("truncated gzip file (it ends before the end of its compressed data)")
    except zlib.error as error:
        raise ReadError(f"corrupt gzip data ({_zlib_reason(error)})") from None


def _zlib_reason(error: zlib.error) -> str:
    text = str(error)
    if "incorrect data check" in text:
        return "CRC check failed"
    if "incorrect length check" in text:
        return "length check failed"
    return text.split(": ", 1)[-1]


# ---------------------------------------------------------------------------------------------- JSON


def loads(data: bytes) -> Any:
    """Parse with orjson, falling back to the standard library for what orjson refuses but JSON allows
    (lone surrogate escapes, integers beyond 64 bits). Raises ``ValueError`` with a content-free reason."""
    try:
        return _fast_loads(data)
    except _FastError:
        pass
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"invalid UTF-8 at byte {error.start}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as error:
        # ``msg`` is fixed text ("Expecting value"); we add positions, never the content.
        message = error.msg.lower().removesuffix(" starting at")
        if error.pos >= len(data.rstrip(_WHITESPACE)) or message == "unterminated string":
            raise ValueError(f"not valid JSON (truncated: {message})") from None
        raise ValueError(f"not valid JSON ({message} at line {error.lineno} column {error.colno})") from None


def _looks_whole(data: bytes) -> bool:
    """The cheap check for text we do not parse: it must open and close like a JSON object or array."""
    text = data.strip(_WHITESPACE)
    return text[:1] in (b"{", b"[") and text[-1:] in (b"}", b"]")


def _shape_reason(data: bytes) -> str:
    text = data.strip(_WHITESPACE)
    if text[:1] not in (b"{", b"["):
        return "not JSON (it does not start with '{' or '[')"
    return "not valid JSON (truncated: it does not end with '}' or ']')"


# ---------------------------------------------------------------------------------------------- records


def iter_candidates(path: str, report: Report) -> Iterator[tuple[str, Any]]:
    """``(place, record)`` for every record of ``path`` that may match; reports what cannot be read.

    ``place`` is ``path`` for a single record, ``path:LINE`` for JSON lines, and ``path Records[i]`` or
    ``path [i]`` for arrays, so a reader can find the record.
    """
    chunks = iter_chunks(path)
    try:
        head = _head(chunks)
        if _is_json_lines(head):
            yield from _json_lines(path, head, chunks, report)
        else:
            yield from _document(path, _read_bounded(head, chunks), report)
    except ReadError as error:
        report(path, str(error))


def _head(chunks: Iterator[bytes]) -> bytes:
    """Read until the first line and something after it are in hand (or the file ends): enough to tell
    JSON lines from one document. Each piece is scanned once, so a huge one-line file costs linear time."""
    pieces: list[bytes] = []
    size = 0
    phase = "leading blanks"
    for chunk in chunks:
        pieces.append(chunk)
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise ReadError(TOO_LARGE)
        rest = chunk
        if phase == "leading blanks":
            rest = rest.lstrip(_WHITESPACE)
            phase = "first line" if rest else phase
        if phase == "first line":
            end = rest.find(b"\n")
            if end >= 0:
                phase, rest = "after the first line", rest[end + 1 :]
        if phase == "after the first line" and rest.strip(_WHITESPACE):
            break
    return b"".join(pieces)


def _read_bounded(head: bytes, chunks: Iterator[bytes]) -> bytes:
    pieces, size = [head], len(head)
    for chunk in chunks:
        pieces.append(chunk)
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise ReadError(TOO_LARGE)
    return b"".join(pieces)


def _is_json_lines(head: bytes) -> bool:
    """JSON lines start with a whole object on the first line; a pretty-printed document does not.

    The first line of a JSON lines file ends with ``}``; if it was truncated, the next line still starts
    with ``{`` at column 0, where a pretty-printed document has indentation or a key.
    """
    text = head.lstrip(_WHITESPACE)
    end = text.find(b"\n")
    if end < 0 or not text.startswith(b"{"):
        return False
    rest = text[end + 1 :].lstrip(b"\r\n")
    if not rest.strip(_WHITESPACE):
        return False  # a single line: one document
    return text[:end].rstrip(_WHITESPACE).endswith(b"}") or rest.startswith(b"{")


def _json_lines(path: str, head: bytes, chunks: Iterator[bytes], report: Report) -> Iterator[tuple[str, Any]]:
    line_number = 0
    partial: list[bytes] = []  # pieces of a line that continues into the next block (joined once: linear)
    partial_size = 0
    oversized = False  # the current line passed MAX_DOCUMENT_BYTES: reported once, dropped to its end
    for block in _prepend(head, chunks):
        if b"\n" not in block:
            if not oversized:
                partial.append(block)
                partial_size += len(block)
                if partial_size > MAX_DOCUMENT_BYTES:
                    report(f"{path}:{line_number + 1}", TOO_LARGE)
                    partial, partial_size, oversized = [], 0, True
            continue
        lines = block.split(b"\n")
        if oversized:
            lines[0], oversized = b"", False
        elif partial:
            lines[0] = b"".join([*partial, lines[0]])
        tail = lines.pop()
        partial, partial_size = ([tail], len(tail)) if tail else ([], 0)
        for line in lines:
            line_number += 1
            yield from _line(path, line_number, line, report)
    if partial:
        yield from _line(path, line_number + 1, b"".join(partial), report)


def _prepend(head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from chunks


_SKIPPED = object()  # a document that cannot hold a match: checked for shape, not parsed


def _parse_candidate(place: str, data: bytes, report: Report) -> Any:
    """The parsed document, or ``_SKIPPED`` when it is blank, cannot match, or is not JSON (reported)."""
    if not data.strip(_WHITESPACE):
        return _SKIPPED  # blank: no records, nothing wrong
    if not may_match(data):
        if not _looks_whole(data):
            report(place, _shape_reason(data))
        return _SKIPPED
    try:
        return loads(data)
    except ValueError as error:
        report(place, str(error))
        return _SKIPPED


def _line(path: str, number: int, line: bytes, report: Report) -> Iterator[tuple[str, Any]]:
    place = f"{path}:{number}"
    document = _parse_candidate(place, line, report)
    if document is not _SKIPPED:
        yield from _records(place, document, report)


def _document(path: str, data: bytes, report: Report) -> Iterator[tuple[str, Any]]:
    document = _parse_candidate(path, data, report)
    if document is _SKIPPED:
        return
    if isinstance(document, list):
        for index, element in enumerate(document):
            yield from _records(f"{path} [{index}]", element, report)
    else:
        yield from _records(path, document, report)


def _records(place: str, document: Any, report: Report) -> Iterator[tuple[str, Any]]:
    """The records of one parsed document, each with its place; a document that is no shape is reported."""
    try:
        for index, record in iter_records(document):
            where = place if index is None else f"{place} Records[{index}]"
            if not isinstance(record, dict):
                report(where, f"record is {_json_type(record)}, expected an object")
            elif "eventName" not in record or "eventSource" not in record:
                # Every CloudTrail record has both: this document is something else (a test fixture, say).
                report(where, "not a CloudTrail record (no eventName or eventSource)")
            else:
                yield where, record
    except MalformedRecord as error:
        report(place, str(error))


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
