"""Bookkeeping of what a run could not use: skipped files, messages and frames, grouped by reason.

One :class:`SkipLog` follows a dataset from reading (unreadable files, undecodable messages) to
registration (unusable frames), so a summary can say "9 registered, 1 skipped: 1 unreadable file
(KITTI .bin size 13 is not a multiple of 16 bytes)" instead of hiding the loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_EXAMPLES = 10  # full messages kept; the counts are always complete
_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")


@dataclass
class SkipGroup:
    """Skips of one kind with the same reason (numbers ignored): how many, and the first one."""

    kind: str  # what was skipped, e.g. "unreadable file", "undecodable message", "unusable frame"
    reason: str  # the first reason of the group, e.g. "KITTI .bin size 13 is not a multiple of 16 bytes"
    first_item: str  # which item it was, e.g. "scan_3.bin", "/points message 12", "frame 7"
    count: int = 0

    def describe(self) -> str:
        noun = self.kind if self.count == 1 else _plural(self.kind)
        return f"{self.count} {noun} ({self.reason}; first: {self.first_item})"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "first": self.first_item, "count": self.count}


def _plural(kind: str) -> str:
    head, _, tail = kind.rpartition(" ")
    word = tail + ("es" if tail.endswith("s") else "s")
    return f"{head} {word}".strip()


@dataclass
class SkipLog:
    """Counts of used and skipped items; skips grouped by (kind, reason with numbers masked)."""

    read: int = 0
    groups: dict[tuple[str, str], SkipGroup] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # first MAX_EXAMPLES "item: reason" lines

    def skip(self, kind: str, item: str, reason: str) -> None:
        """Count one skipped ``item`` of ``kind`` (e.g. "unreadable file") for ``reason``."""
        key = (kind, _NUMBER.sub("#", reason))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = SkipGroup(kind, reason, item)
        group.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{item}: {reason}")

    @classmethod
    def merged(cls, *logs: SkipLog | None) -> SkipLog:
        """One log with the counts and groups of ``logs`` (None entries are ignored)."""
        out = cls()
        for log in logs:
            if log is None:
                continue
            out.read += log.read
            for key, g in log.groups.items():
                have = out.groups.get(key)
                if have is None:
                    out.groups[key] = SkipGroup(g.kind, g.reason, g.first_item, g.count)
                else:
                    have.count += g.count
            out.examples += log.examples[: MAX_EXAMPLES - len(out.examples)]
        return out

    @property
    def skipped(self) -> int:
        return sum(g.count for g in self.groups.values())

    def by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.groups.values():
            out[g.kind] = out.get(g.kind, 0) + g.count
        return out

    def describe(self, limit: int = 3) -> str:
        """One line: '10 unreadable files (reason; first: a.bin), 2 unusable frames (...)'."""
        groups = sorted(self.groups.values(), key=lambda g: -g.count)
        text = ", ".join(g.describe() for g in groups[:limit])
        if len(groups) > limit:
            text += f", and {sum(g.count for g in groups[limit:])} more for {len(groups) - limit} other reasons"
        return text

    def to_list(self) -> list[dict]:
        return [g.to_dict() for g in sorted(self.groups.values(), key=lambda g: -g.count)]

    def add_to(self, stats: dict) -> None:
        """Add the counts to the plain-dict form of this bookkeeping (what the bag readers'
        ``stats`` arguments report): ``read`` and ``skipped`` counts and ``errors``, at most
        MAX_EXAMPLES "item: reason" lines in all; missing keys start empty."""
        stats["read"] = stats.get("read", 0) + self.read
        stats["skipped"] = stats.get("skipped", 0) + self.skipped
        errors = stats.setdefault("errors", [])
        errors.extend(self.examples[: max(0, MAX_EXAMPLES - len(errors))])
