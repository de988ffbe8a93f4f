"""What every bench shares (bench/__init__.py): where a run writes its figures."""

from __future__ import annotations

import pytest

from bench import memory_bench, stream_bench, viewers_bench


@pytest.mark.parametrize("bench", [memory_bench, stream_bench, viewers_bench])
def test_output_makes_its_folder_before_the_run_and_refuses_in_one_line(bench, tmp_path, capsys):
    # A fresh clone has no build/: the folder is made as the argument is read, so a run of
    # many minutes does not end unable to write what it measured.
    target = tmp_path / "build" / "deep" / "figures.json"
    with pytest.raises(SystemExit) as helped:  # --help: the arguments are read, nothing runs
        bench.main(["--output", str(target), "--help"])
    assert helped.value.code == 0
    assert target.parent.is_dir()
    assert not target.exists()

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(SystemExit) as refused:
        bench.main(["--output", str(blocked / "figures.json")])
    assert refused.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument --output: cannot write {blocked / 'figures.json'}: " in line
