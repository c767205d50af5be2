"""A batch job's objects in S3, its identity, its options and its chunk messages: the
one owner of these formats.

    <output prefix><job>/requested.json         POST /batch queued the job
    <output prefix><job>/plan.json              the splitter's plan (chunks, model)
    <output prefix><job>/part-NNNNN.jsonl       {"row": n, <pass-through>, <prediction>}
    <output prefix><job>/errors-NNNNN.jsonl     {"row": n, <pass-through>, "field", "problem"}
    <output prefix><job>/challenger-<version>/part-NNNNN.jsonl  the challenger's rows
    <output prefix><job>/state/done-NNNNN.json  a part's counts, once it is written
    <output prefix><job>/state/failed-NNNNN.json  a chunk given up (dead-letter queue)
    <output prefix><job>/state/split-error.json  why the last attempt to split failed
    <output prefix><job>/summary.json           the job's outcome, written last

A job's id comes from its input object (bucket, key, ETag, size) and its options, so a
duplicate S3 event or a second POST for the same object names the same job, while two
objects (the same bytes under two keys, `ok.csv` and `ok .csv`) never do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

import orjson

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: How many pass-through columns a job may name, and how long each value may be.
MAX_PASS_THROUGH = 8
MAX_PASS_THROUGH_CHARS = 256
#: A pass-through column's name: the field-name rule every surface uses to name fields.
PASS_THROUGH_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
#: Keys of output and error lines; a pass-through column may not take one of these.
RESERVED_NAMES = frozenset({"row", "field", "problem", "label", "labels", "probabilities",
                            "values"})  # fmt: skip
#: The S3-event convention: options ride on the input object as user metadata
#: (`x-amz-meta-batch-pass-through: application_id,loan_ref`).
PASS_THROUGH_METADATA = "batch-pass-through"
IGNORE_EXTRA_METADATA = "batch-ignore-extra-columns"


class InvalidOptions(ValueError):
    """Job options that cannot be used; the message says which and why (never a value)."""


@dataclass(frozen=True)
class JobOptions:
    """What a job's user asked for besides the file: columns copied from each input row
    into its output and error lines, and whether columns that are not model fields are
    ignored (else a CSV header with one is refused, naming it)."""

    pass_through: tuple[str, ...] = ()
    ignore_extra_columns: bool = False

    def __post_init__(self) -> None:
        names = self.pass_through
        if len(names) > MAX_PASS_THROUGH:
            raise InvalidOptions(f"at most {MAX_PASS_THROUGH} pass-through columns")
        for name in names:
            if type(name) is not str or not PASS_THROUGH_NAME.fullmatch(name):
                raise InvalidOptions("a pass-through column is 1-64 letters, digits, '_', '.' "
                                     "or '-', starting with a letter or '_'")  # fmt: skip
            if name in RESERVED_NAMES:
                raise InvalidOptions(f"pass-through column {name!r} would clash with an output "
                                     f"key ({', '.join(sorted(RESERVED_NAMES))})")  # fmt: skip
        if len(set(names)) != len(names):
            raise InvalidOptions("a pass-through column is named twice")
        if type(self.ignore_extra_columns) is not bool:
            raise InvalidOptions("ignore_extra_columns is true or false")

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> JobOptions:
        """From `{"pass_through": [...], "ignore_extra_columns": bool}` (either optional)."""
        names = document.get("pass_through", [])
        if type(names) is not list:
            raise InvalidOptions("pass_through is a list of column names")
        return cls(tuple(names), document.get("ignore_extra_columns", False))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> JobOptions:
        """From the input object's user metadata (S3 lower-cases the keys)."""
        names = metadata.get(PASS_THROUGH_METADATA, "")
        ignore = metadata.get(IGNORE_EXTRA_METADATA, "false").strip().lower()
        if ignore not in {"true", "false"}:
            raise InvalidOptions(f"metadata {IGNORE_EXTRA_METADATA} is true or false")
        return cls(tuple(n.strip() for n in names.split(",") if n.strip()), ignore == "true")

    def to_json(self) -> dict[str, Any]:
        return {"pass_through": list(self.pass_through),
                "ignore_extra_columns": self.ignore_extra_columns}  # fmt: skip

    def to_metadata(self) -> dict[str, str]:
        """The S3-event convention's metadata for these options (none when default)."""
        metadata = {}
        if self.pass_through:
            metadata[PASS_THROUGH_METADATA] = ",".join(self.pass_through)
        if self.ignore_extra_columns:
            metadata[IGNORE_EXTRA_METADATA] = "true"
        return metadata


@dataclass(frozen=True)
class InputObject:
    """One version of an input object: where it is, its ETag (unquoted) and size."""

    bucket: str
    key: str
    etag: str
    size: int

    @classmethod
    def from_head(cls, bucket: str, key: str, head: Mapping[str, Any]) -> InputObject:
        return cls(bucket, key, str(head["ETag"]).strip('"'), int(head["ContentLength"]))

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag, "size": self.size}


def job_id(source: InputObject, options: JobOptions = JobOptions()) -> str:
    """`<file stem>-<16 hex>`: one plain key segment. The hex digest covers bucket, key,
    ETag, size and options, so only the same object asked the same way is the same job."""
    stem = _UNSAFE.sub("-", PurePosixPath(source.key).stem).strip("-.")[:64] or "job"
    identity = orjson.dumps([source.bucket, source.key, source.etag, source.size,
                             options.to_json()])  # fmt: skip
    return f"{stem}-{hashlib.sha256(identity).hexdigest()[:16]}"


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

    def split_error_key(self) -> str:
        return f"{self.state_prefix()}split-error.json"


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
    etag: str | None = None  # the input's version: a replaced object is never read
    pass_through: list[str] = field(default_factory=list)
    ignore_extra_columns: bool = False

    @property
    def options(self) -> JobOptions:
        return JobOptions(tuple(self.pass_through), self.ignore_extra_columns)

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, body: str | bytes) -> Chunk:
        """Parse a message body; ValueError (or TypeError) when it is not a chunk."""
        data: Any = orjson.loads(body)
        if type(data) is not dict:
            raise ValueError("a chunk message is a JSON object")
        return cls(**data)
