"""download_dragons against a local HTTP server: caching, safe extraction, clear errors.

Every test serves a generated zip in the layout of the original archive
(``drogonviserion/{train,valid,test1,sample,models,tmp}/...``) from ``127.0.0.1`` on a free
port; nothing here touches the internet.
"""

from __future__ import annotations

import hashlib
import io
import runpy
import socket
import stat
import struct
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image

from binaryvision import DataError, ImageBinaryClassifier, Trainer
from binaryvision.datasets import CACHE_ENV, DRAGONS_URL, cache_home, download_dragons

ROOT = Path(__file__).resolve().parents[1]
ZIP = "/drogonviserion.zip"


def jpeg(kind: int, rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    make_image(kind, rng, size=32).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def dragons_zip(prefix: str = "drogonviserion/", extra: dict | None = None) -> bytes:
    """A zip in the original layout; ``extra`` maps member names (or ZipInfo) to bytes."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for split, n in (("train", 6), ("valid", 3)):
            for k, name in enumerate(("drogon", "viserion")):
                for i in range(n):
                    zf.writestr(f"{prefix}{split}/{name}/{name}_{i}.jpg", jpeg(k, rng))
                # fastai's sample/ repeats the layout one level down: it must not win
                zf.writestr(f"{prefix}sample/{split}/{name}/{name}_s.jpg", jpeg(k, rng))
        for i in range(2):
            zf.writestr(f"{prefix}test1/{i}.jpg", jpeg(i, rng))
        zf.writestr(f"{prefix}models/", b"")
        zf.writestr(f"{prefix}tmp/", b"")
        for member, data in (extra or {}).items():
            zf.writestr(
                member if isinstance(member, zipfile.ZipInfo) else zipfile.ZipInfo(member), data
            )
    return buf.getvalue()


def set_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size that the central directory declares for ``member``."""
    out, pos = bytearray(data), 0
    while (at := out.find(b"PK\x01\x02", pos)) >= 0:
        n = struct.unpack("<H", out[at + 28 : at + 30])[0]
        if out[at + 46 : at + 46 + n] == member.encode():
            out[at + 24 : at + 28] = struct.pack("<I", size)
            return bytes(out)
        pos = at + 4
    raise AssertionError(f"{member} not in the zip")


class LocalServer:
    """Serves ``routes`` (path -> bytes) on 127.0.0.1; anything else is a 404.

    ``cut[path] = n`` sends only the first n bytes while declaring the full length;
    ``hook[path]`` is called after sending them (the connection stays open meanwhile).
    """

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.hook: dict = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: server.cut.get(self.path, len(body))])
                self.wfile.flush()
                if self.path in server.hook:
                    server.hook[self.path]()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = ZIP) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = LocalServer()
    s.routes[ZIP] = dragons_zip()
    yield s
    s.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def entries(folder: Path) -> list[str]:
    """Everything under ``folder`` (relative paths), or [] when it does not exist."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_download_extracts_the_original_layout_and_fits(server, tmp_path):
    cache = tmp_path / "cache"
    path = download_dragons(cache_dir=cache, url=server.url())
    assert path == cache / "drogonviserion"
    for split, n in (("train", 6), ("valid", 3)):
        for name in ("drogon", "viserion"):
            assert len(list((path / split / name).glob("*.jpg"))) == n
    assert (path / "test1").is_dir() and (path / "sample" / "train").is_dir()
    # only the final names are left: no temporary file or folder
    assert sorted(p.name for p in cache.iterdir()) == ["drogonviserion", "drogonviserion.zip"]
    clf = ImageBinaryClassifier(
        "tiny_cnn", pretrained=False, epochs=1, verbose=0, trainer=Trainer(num_workers=0)
    ).fit(path)
    assert list(clf.classes_) == ["drogon", "viserion"]
    assert clf.n_train_ == 12 and clf.n_valid_ == 6


def test_second_call_uses_the_cache_and_force_downloads_again(server, tmp_path):
    cache = tmp_path / "cache"
    first = download_dragons(cache_dir=cache, url=server.url())
    marker = first / "train" / "drogon" / "drogon_0.jpg"
    assert server.requests == [ZIP]
    assert download_dragons(cache_dir=cache, url=server.url()) == first
    assert server.requests == [ZIP]  # no second request
    marker.unlink()
    assert download_dragons(cache_dir=cache, url=server.url(), force=True) == first
    assert server.requests == [ZIP, ZIP]
    assert marker.is_file()  # the old folder was replaced as a whole
    assert sorted(p.name for p in cache.iterdir()) == ["drogonviserion", "drogonviserion.zip"]


def test_a_zip_placed_by_hand_is_extracted_without_network(tmp_path, closed_port):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "drogonviserion.zip").write_bytes(dragons_zip())
    path = download_dragons(cache_dir=cache, url=f"http://127.0.0.1:{closed_port}/x.zip")
    assert (path / "valid" / "viserion").is_dir()


def test_cache_folder_comes_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "home"))
    assert cache_home() == tmp_path / "home"
    assert cache_home(tmp_path / "other") == tmp_path / "other"
    assert download_dragons(url=server.url()) == tmp_path / "home" / "drogonviserion"
    monkeypatch.delenv(CACHE_ENV)
    assert cache_home() == Path.home() / ".cache" / "binaryvision"


def test_default_url_is_the_raw_github_file():
    assert DRAGONS_URL == (
        "https://github.com/harinij/100DaysOfCode/raw/master/"
        "Day%20023%20-%20Image%20Classifier%20using%20deep%20learning%20CNN%20model/"
        "drogonviserion.zip"
    )


@pytest.mark.parametrize(
    "prefix, extra",
    [
        ("", {}),  # train/ and valid/ at the top of the archive
        ("dragons-v2/", {}),  # another top folder name
        ("drogonviserion/", {"__MACOSX/drogonviserion/train/._a.jpg": b"\0"}),
        ("outer/drogonviserion/", {}),  # one level deeper
    ],
)
def test_small_layout_variations_are_found(server, tmp_path, prefix, extra):
    server.routes[ZIP] = dragons_zip(prefix, extra)
    path = download_dragons(cache_dir=tmp_path / "cache", url=server.url())
    assert path == tmp_path / "cache" / "drogonviserion"
    assert sorted(p.name for p in (path / "train").iterdir()) == ["drogon", "viserion"]
    assert (path / "test1").is_dir()
    cache = tmp_path / "cache"
    assert sorted(p.name for p in cache.iterdir()) == ["drogonviserion", "drogonviserion.zip"]


def test_an_archive_without_train_and_valid_is_refused(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photos/a.jpg", b"x")
    server.routes[ZIP] = buf.getvalue()
    with pytest.raises(DataError, match="no folder with both train/ and valid/"):
        download_dragons(cache_dir=tmp_path / "cache", url=server.url())
    assert entries(tmp_path / "cache") == []


@pytest.mark.parametrize(
    "name",
    [
        "../evil.txt",
        "../../evil.txt",
        "drogonviserion/train/../../../evil.txt",
        "..\\..\\evil.txt",
        "ABSOLUTE",  # replaced by an absolute path inside tmp_path
        "C:/evil.txt",
    ],
)
def test_members_that_escape_the_folder_are_refused(server, tmp_path, name):
    if name == "ABSOLUTE":
        name = str(tmp_path / "evil.txt")
    server.routes[ZIP] = dragons_zip(extra={name: b"pwned"})
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="Refusing to extract") as info:
        download_dragons(cache_dir=cache, url=server.url())
    assert repr(name) in str(info.value)
    assert not list(tmp_path.rglob("evil.txt"))
    assert entries(cache) == []  # no zip, no folder, no temporary leftovers


def test_symbolic_links_are_refused(server, tmp_path):
    link = zipfile.ZipInfo("drogonviserion/train/drogon/link.jpg")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    server.routes[ZIP] = dragons_zip(extra={link: b"/etc/passwd"})
    with pytest.raises(DataError, match="symbolic link"):
        download_dragons(cache_dir=tmp_path / "cache", url=server.url())
    assert entries(tmp_path / "cache") == []


def test_a_zip_bomb_is_refused_before_anything_is_written(server, tmp_path):
    data = dragons_zip(extra={"drogonviserion/train/drogon/bomb.jpg": b"\0" * 64})
    server.routes[ZIP] = set_declared_size(data, "drogonviserion/train/drogon/bomb.jpg", 3 << 30)
    with pytest.raises(DataError, match="zip bomb"):
        download_dragons(cache_dir=tmp_path / "cache", url=server.url())
    assert entries(tmp_path / "cache") == []
    # the limit is a parameter: the honest archive is refused under a tiny one
    server.routes[ZIP] = dragons_zip()
    with pytest.raises(DataError, match="max_bytes=1000"):
        download_dragons(cache_dir=tmp_path / "cache", url=server.url(), max_bytes=1000)


def test_a_member_larger_than_declared_is_refused(server, tmp_path):
    data = dragons_zip(extra={"drogonviserion/train/drogon/big.jpg": b"\0" * 5000})
    server.routes[ZIP] = set_declared_size(data, "drogonviserion/train/drogon/big.jpg", 10)
    with pytest.raises(DataError):
        download_dragons(cache_dir=tmp_path / "cache", url=server.url())
    assert entries(tmp_path / "cache") == []


def test_truncated_and_corrupt_zips_leave_no_files(server, tmp_path):
    cache = tmp_path / "cache"
    good = server.routes[ZIP]
    server.routes[ZIP] = good[: len(good) // 2]  # a file cut in half, served in full
    with pytest.raises(DataError, match="not a valid zip archive.*truncated or corrupt"):
        download_dragons(cache_dir=cache, url=server.url())
    assert entries(cache) == []
    server.routes[ZIP] = good[:100] + bytes(b ^ 0xFF for b in good[100:120]) + good[120:]
    with pytest.raises(DataError, match="not a valid zip archive"):
        download_dragons(cache_dir=cache, url=server.url())
    assert entries(cache) == []


def test_a_connection_cut_mid_download_is_reported(server, tmp_path):
    size = len(server.routes[ZIP])
    server.cut[ZIP] = size // 3
    with pytest.raises(DataError, match=f"closed after {size // 3} of {size} bytes"):
        download_dragons(cache_dir=tmp_path / "cache", url=server.url())
    assert entries(tmp_path / "cache") == []


def test_while_downloading_only_a_temporary_file_exists(server, tmp_path):
    """What a kill during the download would leave: a hidden .part file, no final name."""
    cache = tmp_path / "cache"
    seen: list[list[str]] = []
    release = threading.Event()

    def stall() -> None:
        seen.append(entries(cache))
        release.wait(10)

    server.cut[ZIP] = len(server.routes[ZIP]) // 2
    server.hook[ZIP] = stall
    try:
        with pytest.raises(DataError, match="no answer within 2 s"):
            download_dragons(cache_dir=cache, url=server.url(), timeout=2)
    finally:
        release.set()
    [during] = seen
    assert len(during) == 1 and during[0].startswith(".drogonviserion.zip.")
    assert during[0].endswith(".part")
    assert entries(cache) == []


def assert_offline_advice(message: str, url: str, cache: Path) -> None:
    assert url in message
    assert "offline" in message
    assert str(cache / "drogonviserion.zip") in message
    assert "--data" in message


def test_http_404_says_what_to_do_offline(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(DataError, match="HTTP 404") as info:
        download_dragons(cache_dir=tmp_path / "cache", url=url)
    assert_offline_advice(str(info.value), url, tmp_path / "cache")
    assert entries(tmp_path / "cache") == []


def test_refused_connection_says_what_to_do_offline(tmp_path, closed_port):
    url = f"http://127.0.0.1:{closed_port}{ZIP}"
    with pytest.raises(DataError, match="(?i)refused") as info:
        download_dragons(cache_dir=tmp_path / "cache", url=url)
    assert_offline_advice(str(info.value), url, tmp_path / "cache")
    assert isinstance(info.value.__cause__, OSError)
    assert entries(tmp_path / "cache") == []


def test_a_server_that_never_answers_times_out(tmp_path):
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}{ZIP}"
        with pytest.raises(DataError, match="no answer within 0.3 s") as info:
            download_dragons(cache_dir=tmp_path / "cache", url=url, timeout=0.3)
    assert_offline_advice(str(info.value), url, tmp_path / "cache")


def test_sha256_is_checked(server, tmp_path):
    digest = hashlib.sha256(server.routes[ZIP]).hexdigest()
    wrong = "0" * 64
    with pytest.raises(DataError, match=f"SHA-256 {digest}, expected {wrong}"):
        download_dragons(cache_dir=tmp_path / "cache", url=server.url(), sha256=wrong)
    assert entries(tmp_path / "cache") == []
    path = download_dragons(cache_dir=tmp_path / "cache", url=server.url(), sha256=digest.upper())
    assert (path / "train").is_dir()


def test_dragons_example_downloads_and_runs_end_to_end(server, tmp_path, monkeypatch, capsys):
    cache, out = tmp_path / "cache", tmp_path / "out"
    script = ROOT / "examples" / "dragons.py"
    args = ["--url", server.url(), "--cache-dir", str(cache), "--out", str(out), "--fast"]
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert f"photos in {cache / 'drogonviserion'}" in printed
    for line in ("head only: validation accuracy", "fine-tuned: validation accuracy"):
        value = float(printed.split(line)[1].split()[0])
        assert 0.0 <= value <= 1.0
    assert {"lr_find.png", "confidence.png", "dragons.bv"} <= {p.name for p in out.iterdir()}
    assert server.requests == [ZIP]


def test_dragons_example_offline_exits_with_the_advice(tmp_path, closed_port, monkeypatch, capsys):
    script = ROOT / "examples" / "dragons.py"
    url = f"http://127.0.0.1:{closed_port}{ZIP}"
    args = ["--url", url, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "o")]
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 1
    assert_offline_advice(capsys.readouterr().err, url, tmp_path / "cache")
    assert not (tmp_path / "o").exists()
