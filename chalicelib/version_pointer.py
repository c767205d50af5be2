"""LATEST, a prefix's version pointer: its one reader and its one writer.

The reader serves the model store (conditional re-reads), the batch path ("the version
a job starting now pins") and the tools; the writer serves publish and promote. The
writer refuses to point LATEST at a version whose request contract differs from the
serving one's (`contract_changes`: other task, inputs, widths or fields -- every client's
requests would then get 400) unless the caller allows the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.bundle_layout import BundleLayout, is_version_name
from chalicelib.manifest import BundleManifest, ManifestError
from chalicelib.s3_errors import is_missing, is_not_modified


@dataclass(frozen=True)
class Pointer:
    """What LATEST named when read, and its ETag for the next conditional read."""

    version: str
    etag: str | None


class PointerMissing(LookupError):
    """There is no LATEST, or it may not be read (S3 404 or 403)."""


class PointerMalformed(ValueError):
    """LATEST's body is not a version name; `text` is what it holds."""

    def __init__(self, text: str) -> None:
        super().__init__("LATEST does not hold a version name")
        self.text = text


class ContractChange(ValueError):
    """Pointing LATEST at `version` would change the request contract clients rely on."""

    def __init__(self, serving: str, version: str, changes: list[str]) -> None:
        super().__init__(
            f"version {version} changes the request contract of the serving version "
            f"{serving} ({'; '.join(changes)})"
        )
        self.serving, self.version, self.changes = serving, version, changes


def read_latest(
    s3: Any, bucket: str, layout: BundleLayout, etag: str | None = None
) -> Pointer | None:
    """LATEST's version and ETag; None only when `etag` is given and still current (304).
    Raises PointerMissing, PointerMalformed, or botocore's other errors."""
    condition = {"IfNoneMatch": etag} if etag else {}
    try:
        response = s3.get_object(Bucket=bucket, Key=layout.pointer_key(), **condition)
        text = bytes(response["Body"].read()).decode("utf-8", "replace").strip()
    except Exception as exc:
        if etag and is_not_modified(exc):
            return None
        if is_missing(exc):
            raise PointerMissing(f"s3://{bucket}/{layout.pointer_key()}") from exc
        raise
    if not is_version_name(text):
        raise PointerMalformed(text)
    return Pointer(text, response.get("ETag"))


def latest_version(s3: Any, bucket: str, layout: BundleLayout) -> str | None:
    """The version LATEST names; None when there is none (missing or forbidden).
    A malformed pointer's text is returned as it is (the tools show it)."""
    try:
        pointer = read_latest(s3, bucket, layout)
    except PointerMissing:
        return None
    except PointerMalformed as exc:
        return exc.text
    assert pointer is not None  # an unconditional read has a body
    return pointer.version


def contract_changes(serving: BundleManifest, candidate: BundleManifest) -> list[str]:
    """How a request valid for `serving` may be refused by `candidate` or answered in
    another shape, one phrase each; [] when the request contract is the same."""
    changes: list[str] = []
    if serving.task != candidate.task:
        changes.append(f"task {serving.task} -> {candidate.task}")
    old_heads, new_heads = _heads(serving), _heads(candidate)
    if old_heads != new_heads:
        changes.append(f"outputs {old_heads} -> {new_heads}")
    old_inputs, new_inputs = _inputs(serving), _inputs(candidate)
    if old_inputs != new_inputs:
        changes.append(f"inputs {_describe(old_inputs)} -> {_describe(new_inputs)}")
    if serving.encoded_features != candidate.encoded_features:
        changes.append(
            f"encoded features ({len(serving.encoded_features)} -> "
            f"{len(candidate.encoded_features)}, names or order differ)"
        )
    old_raw, new_raw = _raw_fields(serving), _raw_fields(candidate)
    if old_raw is not None and old_raw != new_raw:
        lost = "no raw records" if new_raw is None else "other raw fields"
        changes.append(f"raw records: {lost}")
    return changes


def check_contract(
    s3: Any, bucket: str, layout: BundleLayout, candidate: BundleManifest
) -> str | None:
    """Raise ContractChange if the version LATEST serves has another request contract
    than `candidate`; returns LATEST's current target (None if unset). A serving version
    whose manifest is missing or unreadable has no contract to keep."""
    previous = latest_version(s3, bucket, layout)
    if previous is None or previous == candidate.version or not is_version_name(previous):
        return previous
    serving = _manifest_or_none(s3, bucket, layout, previous)
    if serving is not None:
        changes = contract_changes(serving, candidate)
        if changes:
            raise ContractChange(previous, candidate.version, changes)
    return previous


def point_latest(
    s3: Any,
    bucket: str,
    layout: BundleLayout,
    candidate: BundleManifest,
    *,
    allow_contract_change: bool = False,
) -> str | None:
    """Point LATEST at `candidate.version` (whose files and manifest are uploaded);
    returns the previous target. ContractChange unless `allow_contract_change`."""
    if allow_contract_change:
        previous = latest_version(s3, bucket, layout)
    else:
        previous = check_contract(s3, bucket, layout, candidate)
    s3.put_object(Bucket=bucket, Key=layout.pointer_key(), Body=candidate.version.encode())
    return previous


def _manifest_or_none(
    s3: Any, bucket: str, layout: BundleLayout, version: str
) -> BundleManifest | None:
    try:
        raw = s3.get_object(Bucket=bucket, Key=layout.manifest_key(version))["Body"].read()
        return BundleManifest.loads(raw)
    except ManifestError:
        return None
    except Exception as exc:
        if is_missing(exc):
            return None
        raise


def _heads(manifest: BundleManifest) -> str:
    """A several-output model's heads as `[name task, ...]` (a response's keys and shapes)."""
    return "[" + ", ".join(f"{head.name} {head.task}" for head in manifest.heads) + "]"


def _inputs(manifest: BundleManifest) -> list[tuple[str, str, tuple[int, ...]]]:
    """Each input's name, dtype and one record's shape ((width,) for a flat input)."""
    return [(i.name, i.dtype, i.record_shape) for i in manifest.model_inputs()]


def _describe(inputs: list[tuple[str, str, tuple[int, ...]]]) -> str:
    return (
        "["
        + ", ".join(f"{name} {dtype}x{'x'.join(map(str, shape))}" for name, dtype, shape in inputs)
        + "]"
    )


def _raw_fields(manifest: BundleManifest) -> list[str] | None:
    return manifest.preprocessing.raw_fields() if manifest.preprocessing else None
