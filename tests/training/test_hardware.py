"""CPU flags, bf16 chosen at run time, and the training child's thread defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from training.hardware import (apply_thread_defaults, cpu_flags, cpu_has_bf16, describe_cpu, use_bf16,
                               with_thread_defaults)

SAPPHIRE_RAPIDS = frozenset("fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile".split())
SKYLAKE = frozenset("fpu sse avx2 avx512f avx512_vnni".split())


def test_cpu_flags_are_read_from_cpuinfo_and_missing_cpuinfo_means_none(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n"
                    "flags\t\t: fpu avx2 amx_bf16\n")
    assert cpu_flags(info) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_bf16_none_follows_the_cpu_and_explicit_values_win():
    assert cpu_has_bf16(SAPPHIRE_RAPIDS) and not cpu_has_bf16(SKYLAKE)
    assert use_bf16(None, "cpu", SAPPHIRE_RAPIDS) is True
    assert use_bf16(None, "cpu", SKYLAKE) is False  # emulated bf16 is slower than fp32
    assert use_bf16(False, "cpu", SAPPHIRE_RAPIDS) is False
    assert use_bf16(True, "cpu", SKYLAKE) is True


def test_thread_defaults_never_override_what_the_user_set():
    assert with_thread_defaults({})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert with_thread_defaults({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    apply_thread_defaults(env)
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}
    # a spin count alone also says how threads wait: libgomp's own default, spelled out, stays so
    assert with_thread_defaults({"GOMP_SPINCOUNT": "300000"}) == {"GOMP_SPINCOUNT": "300000"}
    env = {"GOMP_SPINCOUNT": "300000", "HOME": "/root"}
    apply_thread_defaults(env)
    assert env == {"GOMP_SPINCOUNT": "300000", "HOME": "/root"}


def test_describe_cpu_reports_flags_and_thread_settings():
    info = describe_cpu(SAPPHIRE_RAPIDS, {"OMP_NUM_THREADS": "2", "HOME": "/root"})
    assert info["flags"] == ["avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]
    assert info["bf16_in_hardware"] and info["threads_env"] == {"OMP_NUM_THREADS": "2"}


def test_the_training_child_starts_openmp_with_the_thread_defaults(tmp_path):
    """``python -m training.sft`` sets them before torch loads; a bad spec still ends with @@error."""
    root = Path(__file__).resolve().parents[2]
    probe = ("import os, sys, runpy; sys.argv = ['sft', '--spec', sys.argv[1]]\n"
             "try:\n    runpy.run_module('training.sft', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('@@env ' + os.environ.get('OMP_WAIT_POLICY', ''))\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "missing.json")], env=env,
                         capture_output=True, text=True, timeout=120).stdout
    assert "@@error" in out and "@@env PASSIVE" in out
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "missing.json")],
                         env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True, text=True,
                         timeout=120).stdout
    assert "@@env ACTIVE" in out
    assert json.loads(out.split("@@error ", 1)[1].splitlines()[0])["reason"].startswith("FileNotFoundError")
