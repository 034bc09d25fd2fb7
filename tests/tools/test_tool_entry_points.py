"""Every tool runs as a script from any directory, importing the installed package (no ``sys.path``
edits, no tool loaded by file path)."""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = sorted(p for p in (ROOT / 'tools').rglob('*.py') if "__name__ == '__main__'" in p.read_text())


def test_tools_are_found():
    names = {p.name for p in TOOLS}
    assert {'train.py', 'test.py', 'benchmark.py', 'temporal_probe.py', 'convert_didemo.py'} <= names


@pytest.mark.parametrize('tool', sorted((ROOT / 'tools').rglob('*.py')), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_path_tricks(tool):
    source = tool.read_text()
    assert 'sys.path' not in source
    assert not re.search(r'spec_from_file_location|SourceFileLoader|runpy', source)


def test_every_tool_help_works_from_another_directory(tmp_path):
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    env.pop('PYTHONPATH', None)  # only the installed package

    def help_of(tool):
        return tool, subprocess.run([sys.executable, str(tool), '--help'], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(help_of, TOOLS))
    failed = [f'{tool.relative_to(ROOT)}: rc {proc.returncode}\n{proc.stderr[-2000:]}'
              for tool, proc in results if proc.returncode != 0 or 'usage:' not in proc.stdout]
    assert not failed, '\n'.join(failed)
