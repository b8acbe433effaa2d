"""``transferlab serve`` refuses unsafe or impossible settings before it starts a server."""

from __future__ import annotations

from transferlab.cli.main import build_parser, main


def test_serve_is_registered_with_safe_defaults():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.data_root, args.token) == ("127.0.0.1", 8000, ".", None)


def test_non_loopback_needs_a_token(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRANSFERLAB_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--token" in err and "0.0.0.0" in err
    assert main(["serve", "--host", "0.0.0.0", "--token", "short",
                 "--data-root", str(tmp_path)]) == 2
    assert "at least 8" in capsys.readouterr().err


def test_missing_data_root(tmp_path, capsys):
    assert main(["serve", "--data-root", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
