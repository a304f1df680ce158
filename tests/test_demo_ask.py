"""The demo's front door: it ends with the exact command that asks its assistant."""

from __future__ import annotations

import shlex
from pathlib import Path

from threadtune.demo import ask_command


def test_the_printed_ask_command_names_the_demo_data_dir_even_with_spaces():
    argv = shlex.split(ask_command(Path("/tmp/my demo/data")))
    assert argv[:4] == ["threadtune", "--data-dir", "/tmp/my demo/data", "ask"]
    assert argv[4].endswith("?") and len(argv) == 5


def test_the_printed_ask_command_prefers_a_question_the_demo_answered_verbatim():
    argv = shlex.split(ask_command(Path("/d"), "What's the guest wifi password? It's 'urgent'"))
    assert argv == ["threadtune", "--data-dir", "/d", "ask", "What's the guest wifi password? It's 'urgent'"]
