"""Opening ROS 1 / ROS 2 bags with ``rosbags`` so that one bad connection does not lock out the rest.

rosbags' ``AnyReader`` refuses a whole bag when any message definition fails to parse (Jazzy
records service events whose definitions it cannot parse, next to ordinary topics) and, for
directory bags whose ``metadata.yaml`` QoS text differs from the storage's (older rosbag2
recorders), silently yields no messages at all. :class:`BagReader` reads the storage files
directly (the metadata only when the bag is compressed), builds the type store connection by
connection and sets aside, with the reason, the connections it cannot decode.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any, NamedTuple

from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.rosbag1 import Reader as Reader1
from rosbags.rosbag2 import Reader as Reader2
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from ..core.interrupts import ctrl_c_checkpoint
from ..core.pointcloud import InputError

STORAGE_SUFFIXES = (".mcap", ".db3")


class BagError(InputError):
    """A bag that cannot be opened or read, or a topic that is absent or ambiguous."""


def one_line(exc: BaseException) -> str:
    """An exception's text on one line of at most 200 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def resolve_bag_path(path: str | Path) -> tuple[Path, bool]:
    """The path to open and whether it is a ROS 2 bag; BagError for anything that is not a bag."""
    p = Path(path)
    if not p.exists():
        raise BagError(f"{p}: no such file or directory")
    if p.is_dir():
        if not (p / "metadata.yaml").is_file():
            raise BagError(f"{p}: not a ROS 2 bag directory (no metadata.yaml){storage_file_hint(p)}")
        return p, True
    suffix = p.suffix.lower()
    if suffix == ".bag":
        return p, False
    if suffix in STORAGE_SUFFIXES:
        # the metadata knows about split files and compression, so prefer the directory
        return (p.parent if (p.parent / "metadata.yaml").is_file() else p), True
    raise BagError(f"{p}: not a bag (expected a ROS 1 .bag file, a ROS 2 bag directory or its .mcap/.db3 file)")


def storage_file_hint(folder: Path) -> str:
    """'; to read its storage file directly pass X' for a folder holding .mcap/.db3 files, else ''."""
    storage = sorted(x.name for x in folder.iterdir() if x.suffix.lower() in STORAGE_SUFFIXES)
    return f"; to read its storage file directly pass {folder / storage[0]}" if storage else ""


@dataclass(frozen=True)
class UnreadableConnection:
    """A connection whose messages cannot be decoded (left out of :attr:`BagReader.connections`)."""

    topic: str
    msgtype: str
    reason: str

    def describe(self) -> str:
        return f"{self.topic} ({self.msgtype}): {self.reason}"


class TopicSummary(NamedTuple):
    """Message type and count of one topic over its readable connections."""

    msgtype: str | None  # None when the connections disagree
    msgcount: int
    connections: list[Connection]


class BagReader:
    """An open bag: its decodable connections, their messages, and deserialisation.

    Use as a context manager. ``connections`` lists the decodable connections, ``unreadable``
    the others with their reasons. Every failure to open raises :class:`BagError` naming the path.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        target, self.is2 = resolve_bag_path(path)
        self._readers: list[Any] = []
        self._owner: dict[int, Any] = {}  # id(connection) -> the reader that yields its messages
        self.connections: list[Connection] = []
        self.unreadable: list[UnreadableConnection] = []
        try:
            for source in self._sources(target):
                reader = (Reader2 if self.is2 else Reader1)(source)
                reader.open()
                self._readers.append(reader)
            owned = [(r, c) for r in self._readers for c in r.connections]
            self._typestore = self._build_typestore(owned)
        except BagError:
            self.close()
            raise
        except Exception as exc:  # rosbags raises many types (sqlite3, struct, yaml, ...) on corrupt input
            self.close()
            raise BagError(f"{path}: cannot open bag ({one_line(exc)})") from None

    def _sources(self, target: Path) -> Sequence[Path]:
        """What to open: storage files directly unless the bag is compressed (then its directory)."""
        if not (self.is2 and target.is_dir()):
            return [target]
        with Reader2(target) as probe:  # validates metadata.yaml and finds missing files
            compressed = bool(probe.compression_mode)
        if compressed:
            return [target]
        import yaml

        info = yaml.safe_load((target / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        return [target / PurePath(name).name for name in info["relative_file_paths"]]

    def _build_typestore(self, owned: list[tuple[Any, Connection]]) -> Any:
        connections = [c for _, c in owned]
        store = get_typestore(Stores.EMPTY)
        rejected: dict[str, str] = {}  # msgtype -> reason
        missing = set()
        for conn in connections:
            if conn.msgtype in rejected or conn.msgtype in store.fielddefs:
                continue
            if conn.msgdef.format == MessageDefinitionFormat.NONE:
                missing.add(conn.msgtype)
                continue
            try:
                store.register(_parse_definition(conn))
            except Exception as exc:  # unparseable or conflicting definition: only this type is lost
                rejected[conn.msgtype] = f"message definition cannot be parsed ({one_line(exc)})"
        if missing and self.is2:
            # old sqlite3 bags carry no definitions: the standard Jazzy types stand in for them
            jazzy = get_typestore(Stores.ROS2_JAZZY)
            store.register({k: v for k, v in jazzy.fielddefs.items() if k not in store.fielddefs})
        hash_of = store.hash_rihs01 if self.is2 else (lambda name: store.generate_msgdef(name)[1])
        for reader, conn in owned:
            reason = rejected.get(conn.msgtype)
            if reason is None and conn.msgtype not in store.fielddefs:
                reason = "no message definition in the bag and not a standard ROS 2 Jazzy type"
            if reason is None and conn.digest:
                try:
                    have = hash_of(conn.msgtype)
                except Exception as exc:  # a definition that parses but references unknown types
                    have = f"unavailable ({one_line(exc)})"
                if have != conn.digest:
                    reason = f"message definition does not match its hash {conn.digest}"
            if reason is None:
                self.connections.append(conn)
                self._owner[id(conn)] = reader
            else:
                self.unreadable.append(UnreadableConnection(conn.topic, conn.msgtype, reason))
        return store

    # ------------------------------------------------------------------------------ reading
    @property
    def topics(self) -> dict[str, TopicSummary]:
        """Topic name -> type and message count (from the bag index) of its decodable connections."""
        out: dict[str, TopicSummary] = {}
        for conn in self.connections:
            have = out.get(conn.topic)
            if have is None:
                out[conn.topic] = TopicSummary(conn.msgtype, conn.msgcount, [conn])
            else:
                msgtype = have.msgtype if have.msgtype == conn.msgtype else None
                out[conn.topic] = TopicSummary(msgtype, have.msgcount + conn.msgcount, [*have.connections, conn])
        return out

    def unreadable_topics(self) -> dict[str, str]:
        """Topic -> message type of the connections set aside (topics with no decodable connection)."""
        readable = {c.topic for c in self.connections}
        return {u.topic: u.msgtype for u in self.unreadable if u.topic not in readable}

    def messages(self, connections: Sequence[Connection]) -> Iterator[tuple[Connection, int, bytes]]:
        """(connection, record time ns, raw bytes) of ``connections`` in record-time order."""
        by_reader: dict[int, list[Connection]] = {}
        for conn in connections:
            by_reader.setdefault(id(self._owner[id(conn)]), []).append(conn)
        streams = [r.messages(connections=by_reader[id(r)]) for r in self._readers if id(r) in by_reader]
        merged = iter(streams[0]) if len(streams) == 1 else heapq.merge(*streams, key=lambda m: m[1])
        return _between_checkpoints(merged)

    def deserialize(self, raw: bytes, msgtype: str) -> Any:
        """Decode one raw message (CDR for ROS 2, ROS 1 serialisation otherwise)."""
        if self.is2:
            return self._typestore.deserialize_cdr(raw, msgtype)
        return self._typestore.deserialize_ros1(raw, msgtype)

    # ------------------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close every storage (idempotent; errors of a half-broken bag are not raised)."""
        readers, self._readers = self._readers, []
        for reader in readers:
            try:
                reader.close()
            except Exception:  # closing a half-broken bag must not hide the original error
                pass

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _parse_definition(conn: Connection) -> dict:
    if conn.msgdef.format == MessageDefinitionFormat.MSG:
        return get_types_from_msg(conn.msgdef.data, conn.msgtype)
    # IDL: one block, or several separated by '=' * 80 lines with an 'IDL: name' header each
    sep = "=" * 80 + "\n"
    data = conn.msgdef.data
    if not data.startswith(f"{sep}IDL: "):
        return get_types_from_idl(data)
    types: dict = {}
    for block in data.split(sep)[1:]:
        _, idl = block.split("\n", 1)
        types.update(get_types_from_idl(idl))
    return types


def _between_checkpoints(messages: Iterator[tuple[Connection, int, bytes]]) -> Iterator[tuple[Connection, int, bytes]]:
    """``messages`` with a Ctrl-C checkpoint before each (core/interrupts.py): a long read (the
    ground truth or the IMU of a large bag) stops between two messages."""
    for message in messages:
        ctrl_c_checkpoint()
        yield message
