"""Sample data: generated on the spot, or downloaded once and cached.

- :func:`make_shapes` writes a small circles-vs-squares photo set (no network).
- :func:`download_dragons` fetches the Drogon vs Viserion photos of the fastai-style
  tutorial once, checks and extracts the zip safely, and returns the cached folder.

Like :mod:`sklearn.datasets`, these helpers live in this module and are not exported
from the top-level package::

    from binaryvision.datasets import download_dragons
    path = download_dragons()              # ~/.cache/binaryvision/drogonviserion/
    clf = ImageBinaryClassifier().fit(path)

The cache folder is ``cache_dir``, else ``$BINARYVISION_HOME``, else
``~/.cache/binaryvision``. Offline, download the zip yourself from :data:`DRAGONS_URL` and
put it at ``<cache folder>/drogonviserion.zip``: :func:`download_dragons` then extracts it
without touching the network.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .._version import __version__
from ..exceptions import DataError, InvalidParameterError

__all__ = [
    "CACHE_ENV",
    "DRAGONS_URL",
    "MAX_EXTRACTED_BYTES",
    "cache_home",
    "download_dragons",
    "make_shapes",
]

#: Where the Drogon vs Viserion zip is downloaded from (GitHub repository
#: harinij/100DaysOfCode, branch master, day 23 of the challenge).
DRAGONS_URL = (
    "https://github.com/harinij/100DaysOfCode/raw/master/"
    + urllib.parse.quote("Day 023 - Image Classifier using deep learning CNN model")
    + "/drogonviserion.zip"
)
#: Environment variable naming the cache folder (default ``~/.cache/binaryvision``).
CACHE_ENV = "BINARYVISION_HOME"
#: Archives that declare more uncompressed bytes than this are refused (zip bombs).
MAX_EXTRACTED_BYTES = 2 * 1024**3
#: Archives with more members than this are refused.
MAX_MEMBERS = 200_000
#: Seconds without an answer from the server before a download fails.
DEFAULT_TIMEOUT = 60.0

_DRAGONS_FOLDER = "drogonviserion"
_DRAGONS_ZIP = "drogonviserion.zip"
_CHUNK = 1 << 16


def _draw(kind: str, rng: np.random.Generator, size: int) -> Image.Image:
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    background = (top * (1 - ramp) + bottom * ramp).repeat(size, axis=1)
    noise = rng.normal(0, 12, (size, size, 3))
    image = Image.fromarray(np.clip(background + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        r = int(rng.integers(size // 8, size // 3))
        cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = (cx - r, cy - r, cx + r, cy + r)
        if kind == "circles":
            draw.ellipse(box, fill=colour, outline=(0, 0, 0), width=2)
        else:
            draw.rectangle(box, fill=colour, outline=(0, 0, 0), width=2)
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))


def make_shapes(
    root: str | os.PathLike,
    n_train: int = 40,
    n_valid: int = 20,
    size: int = 160,
    random_state: int = 0,
) -> Path:
    """Write a small two-class photo set: ``circles`` vs ``squares`` on noisy backgrounds.

    The layout is the one :meth:`~binaryvision.ImageBinaryClassifier.fit` reads:
    ``root/train/{circles,squares}/*.jpg`` and ``root/valid/{circles,squares}/*.jpg``.
    Existing files are overwritten; nothing else in ``root`` is touched.

    Parameters
    ----------
    root : str or path
        Folder to write into (created if missing).
    n_train, n_valid : int
        Images per class in each split.
    size : int
        Side of the square images in pixels.
    random_state : int
        Seed; the same seed writes the same images.

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    rng = np.random.default_rng(random_state)
    root = Path(root)
    for split, n in (("train", n_train), ("valid", n_valid)):
        for kind in ("circles", "squares"):
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _draw(kind, rng, size).save(folder / f"{kind}_{i:03d}.jpg", quality=90)
    return root


def cache_home(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder downloads are cached in.

    ``cache_dir`` when given, else ``$BINARYVISION_HOME``, else ``~/.cache/binaryvision``
    (``~`` is expanded). The folder is not created.
    """
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path("~") / ".cache" / "binaryvision"
    return Path(cache_dir).expanduser()


def download_dragons(
    cache_dir: str | os.PathLike | None = None,
    url: str = DRAGONS_URL,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    sha256: str | None = None,
    max_bytes: int = MAX_EXTRACTED_BYTES,
    progress: bool | None = None,
) -> Path:
    """Download the Drogon vs Viserion photos once and return their folder.

    The zip is streamed to a temporary file in the cache folder, checked (``sha256``,
    then every member of the archive), extracted into a temporary folder and only then
    moved into place, so an interrupted or failed download never leaves a partial file or
    folder under the final names. Later calls find the folder and do not download again.

    Parameters
    ----------
    cache_dir : str or path, optional
        Folder for the zip and the extracted photos; see :func:`cache_home`.
    url : str
        Where to fetch the zip (default :data:`DRAGONS_URL`; any ``http(s)://`` or
        ``file://`` URL of a zip with the same layout, for a mirror).
    force : bool
        Download and extract again even if the cache already holds the photos.
    timeout : float
        Seconds to wait for the server to answer (per network operation).
    sha256 : str, optional
        Expected SHA-256 of the zip (hex); a mismatch is refused.
    max_bytes : int
        Refuse archives that would extract to more than this many bytes.
    progress : bool, optional
        Show a tqdm progress bar; by default only when stderr is a terminal.

    Returns
    -------
    pathlib.Path
        ``<cache>/drogonviserion``, which holds ``train/`` and ``valid/`` with one
        subfolder per class (``drogon/``, ``viserion/``), ready for
        :meth:`~binaryvision.ImageBinaryClassifier.fit`. Other folders of the original
        archive (``test1/``, ``sample/``, ...) are kept beside them.

    Raises
    ------
    DataError
        The download failed (the message gives the URL, the reason and how to proceed
        offline), the file is not a valid zip, its checksum differs, or the archive is
        unsafe (absolute or ``..`` paths, links, too large) or lacks ``train/`` and ``valid/``.
    """
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise InvalidParameterError(
            f"download_dragons: max_bytes must be a positive int, got {max_bytes!r}."
        )
    cache = cache_home(cache_dir)
    final = cache / _DRAGONS_FOLDER
    archive = cache / _DRAGONS_ZIP
    if not force and _is_dataset(final):
        return final
    cache.mkdir(parents=True, exist_ok=True)
    if archive.is_file() and not force:
        # a zip put there by hand (offline) or left by an earlier run: no network needed
        _check_sha256(archive, sha256, str(archive), archive)
        _extract_into_place(archive, final, max_bytes, str(archive), archive)
        return final
    tmp = _download(url, cache, timeout, progress, archive)
    try:
        _check_sha256(tmp, sha256, url, archive)
        _extract_into_place(tmp, final, max_bytes, url, archive)
        os.replace(tmp, archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _is_dataset(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "valid").is_dir()


def _offline_hint(url: str, archive: Path) -> str:
    return (
        f"To work offline, download the zip yourself from {url} (in a browser, or on "
        f"another machine) and either place it at {archive}, where download_dragons "
        "extracts it without using the network, or extract it yourself and pass the folder "
        "that holds train/ and valid/ with --data PATH (examples/dragons.py) or to "
        "ImageBinaryClassifier().fit(PATH)."
    )


def _download(url: str, folder: Path, timeout: float, progress: bool | None, archive: Path) -> Path:
    """Stream ``url`` into a new temporary file in ``folder`` and return its path."""
    from tqdm.auto import tqdm

    def fail(reason: str) -> DataError:
        return DataError(
            f"Could not download the Drogon vs Viserion photos from {url}: {reason}. "
            + _offline_hint(url, archive)
        )

    if not url.lower().startswith(("http://", "https://", "file://")):
        raise InvalidParameterError(
            f"download_dragons: url must start with http://, https:// or file://, got {url!r}."
        )
    show = sys.stderr.isatty() if progress is None else bool(progress)
    request = urllib.request.Request(url, headers={"User-Agent": f"binaryvision/{__version__}"})
    fd, name = tempfile.mkstemp(prefix=f".{_DRAGONS_ZIP}.", suffix=".part", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.strip().isdigit() else None
                    received = 0
                    with tqdm(
                        total=total,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=_DRAGONS_ZIP,
                        disable=not show,
                        leave=False,
                    ) as bar:
                        while chunk := response.read(_CHUNK):
                            out.write(chunk)
                            received += len(chunk)
                            bar.update(len(chunk))
            except urllib.error.HTTPError as exc:
                exc.close()
                raise fail(f"the server answered HTTP {exc.code} {exc.reason}") from exc
            except urllib.error.URLError as exc:
                raise fail(f"{exc.reason}") from exc
            except TimeoutError as exc:
                raise fail(f"no answer within {timeout:g} s ({exc})") from exc
            except (http.client.HTTPException, ConnectionError) as exc:
                raise fail(f"the connection failed ({type(exc).__name__}: {exc})") from exc
            if total is not None and received != total:
                raise fail(f"the connection closed after {received} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _check_sha256(path: Path, expected: str | None, source: str, archive: Path) -> None:
    if expected is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected.strip().lower():
        raise DataError(
            f"The zip from {source} has SHA-256 {digest.hexdigest()}, expected {expected}: it "
            "is corrupt or has changed. "
            + (
                f"Delete {archive} and try again, or pass force=True."
                if path == archive
                else "Nothing was kept; try again, or check the URL and the expected checksum."
            )
        )


def _extract_into_place(
    zip_path: Path, final: Path, max_bytes: int, source: str, archive: Path
) -> None:
    """Check and extract ``zip_path``, then move the dataset folder onto ``final``."""
    staging = Path(
        tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".extracting", dir=final.parent)
    )
    try:
        _safe_extract(zip_path, staging, max_bytes, source, zip_path == archive)
        _move_into_place(_find_dataset_root(staging, source), final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_DRIVE = re.compile(r"^[A-Za-z]:")


def _member_parts(name: str, source: str) -> list[str]:
    """The path components of a zip member, refusing any that could escape the folder."""

    def refuse(why: str) -> DataError:
        return DataError(
            f"Refusing to extract {source}: member {name!r} {why}. The archive may be "
            "malicious; nothing was extracted."
        )

    normal = name.replace("\\", "/")
    if "\x00" in normal:
        raise refuse("contains a NUL character")
    if normal.startswith("/"):
        raise refuse("has an absolute path")
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if any(_DRIVE.match(p) for p in parts):
        raise refuse("has a drive letter")
    if ".." in parts:
        raise refuse("has a '..' component that points outside the folder")
    return parts


def _safe_extract(zip_path: Path, dest: Path, max_bytes: int, source: str, is_cached: bool) -> None:
    """Extract every member of ``zip_path`` into ``dest`` after checking all of them."""
    what_now = (
        f"Delete {zip_path} (or pass force=True) and download it again."
        if is_cached
        else "Nothing was kept; try again, or download the zip by hand and check it opens."
    )
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise DataError(
                    f"Refusing to extract {source}: it has {len(infos)} members, more than "
                    f"the limit of {MAX_MEMBERS}."
                )
            plan, total = [], 0
            for info in infos:
                parts = _member_parts(info.filename, source)
                kind = stat.S_IFMT(info.external_attr >> 16)
                if kind == stat.S_IFLNK:
                    raise DataError(
                        f"Refusing to extract {source}: member {info.filename!r} is a symbolic "
                        "link. Nothing was extracted."
                    )
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise DataError(
                        f"Refusing to extract {source}: member {info.filename!r} is not a "
                        "regular file or folder. Nothing was extracted."
                    )
                total += info.file_size
                if total > max_bytes:
                    raise DataError(
                        f"Refusing to extract {source}: it declares more than {max_bytes} bytes "
                        f"once uncompressed (limit max_bytes={max_bytes}); it may be a zip bomb. "
                        "Pass a larger max_bytes if you trust it."
                    )
                if parts:
                    plan.append((info, parts))
            for info, parts in plan:
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, open(target, "xb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > info.file_size:
                            raise DataError(
                                f"Refusing to extract {source}: member {info.filename!r} "
                                f"expands beyond its declared {info.file_size} bytes."
                            )
                        dst.write(chunk)
    except DataError:
        raise
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise DataError(
            f"Cannot extract {source}: two members collide on one path ({exc}). {what_now}"
        ) from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
        raise DataError(
            f"{source} is not a valid zip archive ({type(exc).__name__}: {exc}); the file is "
            f"truncated or corrupt. {what_now}"
        ) from exc


def _find_dataset_root(staging: Path, source: str) -> Path:
    """The shallowest folder under ``staging`` that holds both ``train/`` and ``valid/``."""
    found: list[tuple[int, bool, str]] = []
    for dirpath, dirnames, _ in os.walk(staging):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
        depth = len(Path(dirpath).relative_to(staging).parts)
        if "train" in dirnames and "valid" in dirnames:
            found.append((depth, Path(dirpath).name != _DRAGONS_FOLDER, dirpath))
            dirnames[:] = []
        elif depth >= 4:
            dirnames[:] = []
    if not found:
        top = sorted(p.name for p in staging.iterdir())[:10]
        raise DataError(
            f"{source} holds no folder with both train/ and valid/ subfolders (its top level: "
            f"{', '.join(top) or 'nothing'}). Is it the Drogon vs Viserion archive?"
        )
    return Path(min(found)[2])


def _move_into_place(root: Path, final: Path) -> None:
    """Rename ``root`` onto ``final``; an existing ``final`` is replaced as a whole."""
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.{secrets.token_hex(4)}.old")
        os.replace(final, old)
    try:
        os.replace(root, final)
    except OSError:
        if old is not None:
            os.replace(old, final)
            raise
        if _is_dataset(final):  # another process finished the same download first
            return
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
