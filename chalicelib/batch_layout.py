"""A batch job's objects in S3 and its chunk messages: the one owner of both formats.

    <output prefix><job>/requested.json         POST /batch queued the job
    <output prefix><job>/plan.json              the splitter's plan (chunks, model)
    <output prefix><job>/part-NNNNN.jsonl       {"row": n, ...prediction...} per line
    <output prefix><job>/errors-NNNNN.jsonl     {"row": n, "field": f, "problem": p}
    <output prefix><job>/challenger-<version>/part-NNNNN.jsonl  the challenger's rows
    <output prefix><job>/state/done-NNNNN.json  a part's counts, once it is written
    <output prefix><job>/state/failed-NNNNN.json  a chunk given up (dead-letter queue)
    <output prefix><job>/summary.json           written once, last

A job's id comes from its input object (name and ETag), so a duplicate S3 event or a
second POST for the same object names the same job and rewrites the same keys.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

import orjson

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def job_id(key: str, etag: str) -> str:
    """`<file stem>-<12 hex of the ETag>`: one plain key segment."""
    stem = _UNSAFE.sub("-", PurePosixPath(key).stem).strip("-.")[:64] or "job"
    return f"{stem}-{etag.strip('"').replace('-', '')[:12]}"


def input_format(key: str) -> str | None:
    """ "csv" or "jsonl" by the key's extension; None for anything else."""
    return FORMATS.get(PurePosixPath(key).suffix.lower())


@dataclass(frozen=True)
class JobLayout:
    """The keys of one job under the output prefix."""

    output_prefix: str
    job: str

    @property
    def root(self) -> str:
        return f"{self.output_prefix}{self.job}/"

    def requested_key(self) -> str:
        return f"{self.root}requested.json"

    def plan_key(self) -> str:
        return f"{self.root}plan.json"

    def summary_key(self) -> str:
        return f"{self.root}summary.json"

    def part_key(self, index: int) -> str:
        return f"{self.root}part-{index:05d}.jsonl"

    def errors_key(self, index: int) -> str:
        return f"{self.root}errors-{index:05d}.jsonl"

    def challenger_part_key(self, version: str, index: int) -> str:
        return f"{self.root}challenger-{version}/part-{index:05d}.jsonl"

    def state_prefix(self) -> str:
        return f"{self.root}state/"

    def done_key(self, index: int) -> str:
        return f"{self.state_prefix()}done-{index:05d}.json"

    def failed_key(self, index: int) -> str:
        return f"{self.state_prefix()}failed-{index:05d}.json"


@dataclass(frozen=True)
class Chunk:
    """One SQS message: a line-aligned byte range of the input and what a worker needs
    to score it and, if it is the last, to write the summary."""

    job: str
    bucket: str
    key: str
    format: str
    header: list[str] | None
    index: int
    start: int  # first byte of the chunk's first row
    end: int  # one past its last byte
    first_row: int  # 0-based row number (in the file, header excluded) of that row
    rows: int
    parts: int  # the job's number of chunks
    model_name: str
    model_version: str
    started: str
    challenger_version: str | None = None  # pinned by the splitter, like the model's

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, body: str | bytes) -> Chunk:
        """Parse a message body; ValueError (or TypeError) when it is not a chunk."""
        data: Any = orjson.loads(body)
        if type(data) is not dict:
            raise ValueError("a chunk message is a JSON object")
        return cls(**data)
