"""The one atomic-write helper: the destination holds the old or the new content, never a mix."""

from __future__ import annotations

import pytest

from mtdense.atomic_write import atomic_path, write_text


def test_file_is_replaced_and_no_temporary_is_left(tmp_path):
    target = tmp_path / "sub" / "result.json"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_an_error_while_writing_keeps_the_old_content(tmp_path):
    target = tmp_path / "result.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_folder_replaces_a_folder(tmp_path):
    target = tmp_path / "step_1"
    for content in ("first", "second"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text(content)
    assert (target / "weights").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["step_1"]
