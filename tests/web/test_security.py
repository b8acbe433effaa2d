"""Guards of the web app: binding, path confinement and safe zip extraction."""

from __future__ import annotations

import io
import zipfile

import pytest

from transferlab.web.security import (
    SecurityError,
    ZipLimits,
    check_bind,
    dataset_root_in,
    is_loopback,
    request_token,
    resolve_under,
    safe_extract_zip,
    token_matches,
)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host):
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_other_hosts_need_a_token(host):
    assert not is_loopback(host)
    with pytest.raises(SecurityError, match="--token"):
        check_bind(host, None)
    check_bind(host, "a-long-enough-token")
    with pytest.raises(SecurityError, match="at least 8"):
        check_bind(host, "short")


def test_token_sources():
    assert request_token({"authorization": "Bearer abc"}, {}, {}) == "abc"
    assert request_token({"x-transferlab-token": "h"}, {}, {}) == "h"
    assert request_token({}, {"transferlab_token": "c"}, {}) == "c"
    assert request_token({}, {}, {"token": "q"}) == "q"
    assert request_token({}, {}, {}) is None
    assert token_matches("secret-token", "secret-token")
    assert not token_matches("secret-token", "secret-tokem")
    assert not token_matches("secret-token", None)


def test_resolve_under(tmp_path):
    (tmp_path / "root" / "a").mkdir(parents=True)
    root = tmp_path / "root"
    assert resolve_under(root, "a") == (root / "a").resolve()
    for bad in ("../x", "a/../../x", "/etc/passwd", "C:\\Windows", "a\\..\\..\\x"):
        with pytest.raises(SecurityError) as info:
            resolve_under(root, bad)
        assert info.value.status == 403
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(SecurityError, match="outside its root"):
        resolve_under(root, "link")
    with pytest.raises(SecurityError, match="invalid"):
        resolve_under(root, "a\x00b")


@pytest.fixture
def zip_bytes(make_zip):
    return make_zip


def _extract(tmp_path, data: bytes, limits: ZipLimits | None = None):
    src = tmp_path / "in.zip"
    src.write_bytes(data)
    return safe_extract_zip(src, tmp_path / "out", limits or ZipLimits())


def test_extracts_a_plain_zip(tmp_path, zip_bytes):
    files = _extract(tmp_path, zip_bytes({"top/a/1.txt": b"one", "top/b/2.txt": b"two"}))
    assert sorted(f.name for f in files) == ["1.txt", "2.txt"]
    assert (tmp_path / "out" / "top" / "a" / "1.txt").read_bytes() == b"one"
    assert dataset_root_in(tmp_path / "out") == tmp_path / "out" / "top"


@pytest.mark.parametrize("name, message", [
    ("../evil.txt", "'..'"),
    ("a/../../evil.txt", "'..'"),
    ("/etc/evil.txt", "absolute"),
    ("C:/evil.txt", "absolute"),
])
def test_refuses_path_escapes(tmp_path, zip_bytes, name, message):
    with pytest.raises(SecurityError, match=message):
        _extract(tmp_path, zip_bytes({"ok.txt": b"x", name: b"evil"}))
    assert not (tmp_path / "out").exists()  # nothing was written
    assert not (tmp_path / "evil.txt").exists()


def test_refuses_symlinks(tmp_path, zip_bytes):
    with pytest.raises(SecurityError, match="symbolic link"):
        _extract(tmp_path, zip_bytes({"a/link.jpg": b"/etc/passwd"}, symlinks=("a/link.jpg",)))
    assert not (tmp_path / "out").exists()


def test_refuses_zip_bombs(tmp_path, zip_bytes):
    bomb = zip_bytes({"zeros.bin": bytes(5_000_000)})  # compresses ~1000:1
    with pytest.raises(SecurityError, match="zip bomb") as info:
        _extract(tmp_path, bomb)
    assert info.value.status == 413
    with pytest.raises(SecurityError, match="unpacks to"):
        _extract(tmp_path, zip_bytes({"a.bin": bytes(2000), "b.bin": bytes(2000)}),
                 ZipLimits(max_total_bytes=3000, max_ratio=1e9))
    with pytest.raises(SecurityError, match="entries"):
        _extract(tmp_path, zip_bytes({f"{i}.txt": b"x" for i in range(5)}),
                 ZipLimits(max_files=4))


def test_refuses_lying_headers(tmp_path, zip_bytes):
    """A member whose data is longer than its header says fails the CRC/size check."""
    data = bytearray(zip_bytes({"a.txt": b"A" * 100}))
    # shrink the declared uncompressed size in the central directory and local header
    data = data.replace((100).to_bytes(4, "little"), (10).to_bytes(4, "little"))
    with pytest.raises(SecurityError):
        _extract(tmp_path, bytes(data))
    assert not (tmp_path / "out").exists()


def test_not_a_zip_and_existing_destination(tmp_path, zip_bytes):
    with pytest.raises(SecurityError, match="not a valid zip"):
        _extract(tmp_path, b"PK\x03\x04 this is not a zip")
    (tmp_path / "out").mkdir()
    with pytest.raises(SecurityError, match="already exists") as info:
        _extract(tmp_path, zip_bytes({"a.txt": b"a"}))
    assert info.value.status == 409


def test_encrypted_members_are_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("secret.txt", b"x")
    data = bytearray(buf.getvalue())
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x1  # general purpose flag bit 0: encrypted
    with pytest.raises(SecurityError, match="encrypted"):
        _extract(tmp_path, bytes(data))
