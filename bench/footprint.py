"""Deployed footprint: what ``gcloud functions deploy`` uploads and what it installs.

- Upload: the files ``gcloud meta list-files-for-upload`` lets through ``.gcloudignore``
  (the real gcloud, run offline exactly as the deploy tests run it), raw and zipped.
- Runtime dependencies: the installed size of ``requirements.txt`` in ``.venv-runtime``
  (``make .venv-runtime/.installed``), pip itself excluded; next to it the installed size of
  the ``tensorflow`` distribution alone, which the usual approach deploys.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNTIME_VENV = REPO / ".venv-runtime"
_NOT_DEPLOYED = ("pip", "pip-")  # the venv's installer, not a requirement


@dataclass(frozen=True)
class Size:
    """Bytes, or why there is no figure."""

    bytes: int | None
    detail: str


def upload() -> tuple[Size, Size]:
    """(raw bytes of the files gcloud would upload, their size as a deflated zip)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        missing = Size(None, "gcloud CLI not installed")
        return missing, missing
    from tests.deploy.offline_gcloud import offline_env

    with tempfile.TemporaryDirectory(prefix="gcloud-offline-") as tmp:
        result = subprocess.run(
            [gcloud, "meta", "list-files-for-upload", str(REPO)],
            env=offline_env(Path(tmp) / "config"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        failed = Size(None, f"gcloud failed: {result.stderr.strip()[:200]}")
        return failed, failed
    files = sorted(line.strip() for line in result.stdout.splitlines() if line.strip())
    raw = sum((REPO / f).stat().st_size for f in files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in files:
            archive.write(REPO / f, f)
    detail = f"{len(files)} files"
    return Size(raw, detail), Size(len(buffer.getvalue()), detail + ", zip")


def runtime_dependencies() -> Size:
    """Installed size of ``requirements.txt`` (``.venv-runtime`` site-packages, without pip)."""
    found = sorted(RUNTIME_VENV.glob("lib/python*/site-packages"))
    if not found:
        return Size(None, "no .venv-runtime: run make .venv-runtime/.installed")
    site = found[0]
    total = 0
    for entry in site.iterdir():
        if entry.name.startswith(_NOT_DEPLOYED) or entry.name == "__pycache__":
            continue
        paths = entry.rglob("*") if entry.is_dir() else [entry]
        total += sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink())
    return Size(total, f"{site.relative_to(REPO)}")


def tensorflow_installed() -> Size:
    """Installed size of the ``tensorflow`` distribution in this environment."""
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        total = 0
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
        return Size(total, f"{name} {dist.version}")
    return Size(None, "tensorflow not installed here")


def measure() -> dict[str, list]:
    """Every footprint figure as ``{name: [bytes or None, detail]}``."""
    upload_raw, upload_zip = upload()
    sizes = {
        "upload": upload_raw,
        "upload_zip": upload_zip,
        "runtime": runtime_dependencies(),
        "tensorflow": tensorflow_installed(),
    }
    return {name: [size.bytes, size.detail] for name, size in sizes.items()}
