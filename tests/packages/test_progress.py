"""Downloads and builds report their progress (the CLI draws its progress bars from it)."""

from __future__ import annotations

from pathlib import Path

from plutino.config import DataDir, Settings
from plutino.packages.fetch import fetch
from plutino.packages.scaffold import build_project, new_project


def test_a_download_reports_its_bytes_against_the_content_length(http_base, zips, tmp_path):
    seen: list[tuple[int, int | None]] = []
    fetch(f"{http_base}/echo.zip", tmp_path / "echo.zip", Settings(allow_private_addresses="127.0.0.1"),
          lambda done, total: seen.append((done, total)), data=DataDir(tmp_path / "home"))
    size = (zips / "echo.zip").stat().st_size
    assert seen and seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_a_local_copy_reports_one_complete_step(zips, tmp_path):
    seen: list[tuple[int, int | None]] = []
    fetch(str(zips / "echo.zip"), tmp_path / "echo.zip", Settings(allowed_file_dirs=(zips,)),
          lambda done, total: seen.append((done, total)), data=DataDir(tmp_path / "home"))
    size = (zips / "echo.zip").stat().st_size
    assert seen == [(size, size)]


def test_a_build_reports_its_steps_up_to_the_total(tmp_path: Path):
    project = new_project("progressed", "function", "c", tmp_path / "progressed")
    steps: list[tuple[int, int]] = []
    built = build_project(project, quiet=True, progress=lambda done, total: steps.append((done, total)))
    assert [p.name for p in built] == ["progressed.so"]
    assert steps and steps[-1][0] == steps[-1][1]
