"""`pcn.files.atomic_write`: the umask's mode, and no trace of a write that failed."""

import os
import stat

import pytest

from pcn.files import atomic_write, default_file_mode


@pytest.fixture
def umask():
    """`umask(value)` sets the process umask for the test; the old one is restored."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("value, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_the_file_gets_the_mode_open_would_give_under_the_umask(tmp_path, umask, value, expected):
    umask(value)
    assert default_file_mode() == expected
    path = atomic_write(tmp_path / "sub" / "a.bin", b"abc")
    assert path.read_bytes() == b"abc" and _mode(path) == expected
    atomic_write(path, lambda f: f.write(b"de"))  # a callback writer, over an old file
    assert path.read_bytes() == b"de" and _mode(path) == expected


def test_a_write_that_raises_midway_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    path = atomic_write(tmp_path / "a.txt", b"old")

    def broken(f):
        f.write(b"half of the new")
        raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, lambda f: (_ for _ in ()).throw(KeyboardInterrupt))
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_first_write_that_raises_leaves_nothing(tmp_path):
    with pytest.raises(ZeroDivisionError):
        atomic_write(tmp_path / "a.txt", lambda f: 1 / 0)
    assert list(tmp_path.iterdir()) == []


def test_text_is_refused_with_the_fix(tmp_path):
    with pytest.raises(TypeError, match=r"text\.encode\(\)"):
        atomic_write(tmp_path / "a.txt", "not bytes")
    assert list(tmp_path.iterdir()) == []
