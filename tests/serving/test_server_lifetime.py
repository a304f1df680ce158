"""A model server never outlives the process that started it, even when that process is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fakes.wait import eventually

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_server_dies_with_a_parent_killed_by_sigkill(embedded_model_dir):
    code = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from serving.embedded import EmbeddedServer
        server = EmbeddedServer(Path({str(embedded_model_dir)!r}), name="orphan").start()
        print(server.pid, flush=True)
        os.kill(os.getpid(), 9)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    pid = int(out.stdout.strip().splitlines()[-1])
    try:
        eventually(lambda: not Path(f"/proc/{pid}").exists(), 10, what="the orphaned server to die")
    except AssertionError:
        os.kill(pid, 9)
        pytest.fail("the model server outlived its killed parent")
