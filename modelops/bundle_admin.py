"""The bundles under one prefix: list them, move LATEST (rollback), and the checks a
publish runs before converting. Every function takes a boto3-style S3 client.

Refusals raise BundleAdminError with a message saying what to do; botocore's own
errors pass through (the command line turns them into one line, cli_errors.s3_errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.bundle_layout import LATEST_POINTER, MANIFEST_FILE, BundleLayout, is_version_name
from chalicelib.engines.registry import ENGINES
from chalicelib.manifest import BundleManifest, ManifestError
from chalicelib.s3_errors import is_missing
from chalicelib.version_pointer import ContractChange, check_contract, point_latest
from chalicelib.version_pointer import latest_version as _latest
from modelops.cli_errors import UserMistake

#: What to pass when a promotion or publish would change the request contract.
ALLOW_CONTRACT_CHANGE = "--allow-contract-change"


class BundleAdminError(UserMistake):
    """A listing, promotion or publish refused; nothing was changed."""


@dataclass(frozen=True)
class VersionInfo:
    """One version folder under a prefix, as `--list` shows it."""

    version: str
    size: int  # bytes of every object in the folder
    manifest: BundleManifest | None
    problem: str | None = None  # why it cannot be served or promoted

    @property
    def engines(self) -> tuple[str, ...]:
        """The engine kinds whose artifact the manifest lists."""
        if self.manifest is None:
            return ()
        return tuple(k for k, s in ENGINES.items() if s.artifact in self.manifest.artifacts)


@dataclass(frozen=True)
class Listing:
    bucket: str
    prefix: str
    versions: tuple[VersionInfo, ...]  # oldest first
    latest: str | None  # what LATEST names, None if there is none


def list_versions(s3: Any, bucket: str, prefix: str) -> Listing:
    """Every version folder under `prefix`, with its manifest, and LATEST's target."""
    layout = BundleLayout(prefix)
    sizes: dict[str, int] = {}
    for key, size in _objects(s3, bucket, f"{layout.prefix}/" if layout.prefix else ""):
        folder, slash, _ = key[len(layout.prefix) + 1 if layout.prefix else 0 :].partition("/")
        if slash:
            sizes[folder] = sizes.get(folder, 0) + size
    versions = [_describe(s3, bucket, layout, v, size) for v, size in sizes.items()]
    versions.sort(key=lambda v: (v.manifest.created_at if v.manifest else "", _natural(v.version)))
    return Listing(bucket, layout.prefix, tuple(versions), latest_version(s3, bucket, layout))


def format_listing(listing: Listing) -> str:
    """The listing as a table; `*` marks the version LATEST points at."""
    where = f"s3://{listing.bucket}/{listing.prefix + '/' if listing.prefix else ''}"
    if not listing.versions:
        return f"{where}: no versions"
    rows = [("", "version", "created_at", "engines", "size", "")]
    for v in listing.versions:
        rows.append((
            "*" if v.version == listing.latest else "",
            v.version,
            v.manifest.created_at if v.manifest else "-",
            ",".join(v.engines) or "-",
            _size(v.size),
            v.problem or "",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    pointer = f"LATEST -> {listing.latest}" if listing.latest else f"no {LATEST_POINTER}"
    return "\n".join([f"{where}  ({pointer})", *lines])


def promote(
    s3: Any,
    bucket: str,
    prefix: str,
    version: str,
    name: str | None = None,
    *,
    allow_contract_change: bool = False,
) -> str | None:
    """Point LATEST at `version` after checking it can be served; returns the previous
    target. `name` (default: the model LATEST now serves) must be the manifest's name;
    its request contract must be the serving version's unless `allow_contract_change`."""
    layout = BundleLayout(prefix)
    check_version_name(version)
    manifest = read_manifest(s3, bucket, layout, version)
    previous = latest_version(s3, bucket, layout)
    expected = name or _current_name(s3, bucket, layout, previous)
    if expected is not None and manifest.name != expected:
        raise BundleAdminError(
            f"version {version} at {_url(bucket, layout)} is model {manifest.name!r}, "
            f"not {expected!r}: promote a version of {expected!r} (see --list)"
        )
    for artifact in manifest.artifacts.values():
        if _size_of(s3, bucket, layout.file_key(version, artifact.file)) != artifact.bytes:
            raise BundleAdminError(
                f"version {version}'s {artifact.file} is missing or not the size its manifest "
                "records: publish it again with --overwrite, or promote another version"
            )
    return move_latest(s3, bucket, layout, manifest, allow_contract_change=allow_contract_change)


def move_latest(
    s3: Any, bucket: str, layout: BundleLayout, manifest: BundleManifest, *,
    allow_contract_change: bool = False,
) -> str | None:  # fmt: skip
    """chalicelib.version_pointer's writer, its refusal as one line saying what to do."""
    try:
        return point_latest(s3, bucket, layout, manifest,
                            allow_contract_change=allow_contract_change)  # fmt: skip
    except ContractChange as exc:
        raise BundleAdminError(contract_change_message(exc)) from None


def check_promotable(s3: Any, bucket: str, layout: BundleLayout, manifest: BundleManifest) -> None:
    """Before uploading: BundleAdminError if moving LATEST to `manifest` would change
    the request contract (the same check the writer makes)."""
    try:
        check_contract(s3, bucket, layout, manifest)
    except ContractChange as exc:
        raise BundleAdminError(contract_change_message(exc)) from None


def contract_change_message(exc: ContractChange) -> str:
    return (
        f"{exc}: requests clients send to version {exc.serving} would be refused or "
        f"answered in another shape; pass {ALLOW_CONTRACT_CHANGE} to move LATEST anyway, "
        "or --no-promote to upload without moving it (nothing was changed)"
    )


def check_publishable(
    s3: Any, bucket: str, prefix: str, *, name: str, version: str, overwrite: bool
) -> None:
    """Before converting: refuse a prefix that holds another model, or an existing
    version unless `overwrite`. Reaching S3 also surfaces missing credentials or bucket."""
    layout = BundleLayout(prefix)
    check_version_name(version)
    owner = _current_name(s3, bucket, layout, latest_version(s3, bucket, layout))
    if owner is not None and owner != name:
        raise BundleAdminError(
            f"{_url(bucket, layout)} holds model {owner!r}, not {name!r}; publishing here "
            f"would replace it: pass --name {owner} to publish a new version of it, or leave "
            f"out --prefix so {name!r} gets its own"
        )
    if not overwrite and _size_of(s3, bucket, layout.manifest_key(version)) is not None:
        raise BundleAdminError(
            f"version {version} already exists at {_url(bucket, layout)}{version}/: "
            "choose another --version, or pass --overwrite to replace it"
        )


def read_manifest(s3: Any, bucket: str, layout: BundleLayout, version: str) -> BundleManifest:
    """The manifest of `version`, which must exist, parse and name that version."""
    where = f"{_url(bucket, layout)}{version}/{MANIFEST_FILE}"
    try:
        raw = s3.get_object(Bucket=bucket, Key=layout.manifest_key(version))["Body"].read()
    except Exception as exc:
        if is_missing(exc):
            raise BundleAdminError(
                f"no version {version}: {where} does not exist or may not be read (see --list)"
            ) from None
        raise
    try:
        manifest = BundleManifest.loads(raw)
    except ManifestError as exc:
        raise BundleAdminError(f"{where} is not a valid manifest ({exc}): publish again") from exc
    if manifest.version != version:
        raise BundleAdminError(
            f"{where} describes version {manifest.version!r}, not {version!r}: publish again"
        )
    return manifest


def latest_version(s3: Any, bucket: str, layout: BundleLayout) -> str | None:
    """What LATEST names (stripped), or None if there is no LATEST."""
    return _latest(s3, bucket, layout)


def _current_name(s3: Any, bucket: str, layout: BundleLayout, latest: str | None) -> str | None:
    """The model name LATEST's manifest records, None if it cannot be read."""
    if latest is None or not is_version_name(latest):
        return None
    try:
        return read_manifest(s3, bucket, layout, latest).name
    except BundleAdminError:
        return None


def _describe(s3: Any, bucket: str, layout: BundleLayout, version: str, size: int) -> VersionInfo:
    try:
        return VersionInfo(version, size, read_manifest(s3, bucket, layout, version))
    except BundleAdminError:
        if _size_of(s3, bucket, layout.manifest_key(version)) is None:
            return VersionInfo(version, size, None, "no manifest (incomplete upload?)")
        return VersionInfo(version, size, None, "manifest malformed")


def _objects(s3: Any, bucket: str, prefix: str) -> list[tuple[str, int]]:
    """(key, size) of every object under `prefix`, following continuation tokens."""
    found: list[tuple[str, int]] = []
    token: dict[str, str] = {}
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **token)
        found += [(o["Key"], int(o.get("Size", 0))) for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return found
        token = {"ContinuationToken": page["NextContinuationToken"]}


def _size_of(s3: Any, bucket: str, key: str) -> int | None:
    """The object's size; None when it is missing or may not be read."""
    try:
        return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except Exception as exc:
        if is_missing(exc):
            return None
        raise


def check_version_name(version: str, error: type[UserMistake] = BundleAdminError) -> None:
    """Raise `error` naming the rule when `version` cannot name a bundle version."""
    if not is_version_name(version):
        raise error(
            f"version {version!r} is not a valid name: use 1-128 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, and not 'latest'"
        )


def _url(bucket: str, layout: BundleLayout) -> str:
    return f"s3://{bucket}/{layout.prefix + '/' if layout.prefix else ''}"


def _natural(version: str) -> tuple[Any, ...]:
    """Sort key so that version 10 comes after version 9."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.split("."))


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
