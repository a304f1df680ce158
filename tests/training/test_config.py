"""Presets, overrides, derived schedules and the accelerate command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.errors import ConfigError
from curation.train_config import PRESET_NAMES, TrainConfig, load_preset, parse_overrides
from training.config import derive_schedule, resolve_config
from training.sft import accelerate_command


def test_every_config_field_has_help_text():
    assert all(text.strip() for text in TrainConfig.field_help().values())


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_resolves_to_a_valid_config(name):
    config = resolve_config(name, 100)
    assert config.preset == name
    assert config.epochs and config.learning_rate
    assert set(load_preset(name)) <= set(TrainConfig.field_help())


def test_gpu_presets_use_bf16_and_qlora_loads_in_4bit():
    assert resolve_config("gpu-lora", 100).bf16 and resolve_config("gpu-lora", 100).gradient_checkpointing
    assert resolve_config("gpu-qlora", 100).load_in_4bit
    assert not resolve_config("cpu-small", 100).load_in_4bit


def test_cpu_small_leaves_bf16_to_the_hardware_and_overrides_can_pin_it():
    assert resolve_config("cpu-small", 100).bf16 is None  # decided in the training child
    assert resolve_config("cpu-small", 100, parse_overrides(["bf16=false"])).bf16 is False
    assert resolve_config("cpu-small", 100, parse_overrides(["bf16=null"])).bf16 is None
    assert not resolve_config("cpu-small", 100).torch_compile
    with pytest.raises(ConfigError, match="bf16='fast' is not a bool"):
        resolve_config("cpu-small", 100, {"bf16": "fast"})


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match="gpu-huge.*cpu-small, gpu-lora, gpu-qlora"):
        resolve_config("gpu-huge", 10)


def test_small_datasets_get_more_epochs_and_a_higher_rate():
    small_epochs, small_lr = derive_schedule(60, 2e-4)
    big_epochs, big_lr = derive_schedule(5000, 2e-4)
    assert small_epochs > big_epochs == 3
    assert small_lr > big_lr == 2e-4
    assert derive_schedule(1, 2e-4)[0] == 12


def test_given_epochs_and_rate_win_over_the_derived_ones():
    config = resolve_config("cpu-small", 60, {"epochs": 2, "learning_rate": 1e-4})
    assert (config.epochs, config.learning_rate) == (2.0, 1e-4)


def test_overrides_are_typed_and_unknown_keys_are_refused():
    assert parse_overrides(["lora_r=8", "packing=false", "learning-rate=3e-4"]) == {
        "lora_r": 8, "packing": False, "learning_rate": 3e-4}
    with pytest.raises(ConfigError, match="'lora_rank' is not a config field.*'oops' is not KEY=VALUE"):
        parse_overrides(["lora_rank=8", "oops"])
    with pytest.raises(ConfigError, match="preset is chosen with --preset"):
        parse_overrides(["preset=gpu-lora"])


def test_every_invalid_field_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        resolve_config("cpu-small", 10, {"lora_r": 0, "per_device_batch_size": -1, "load_in_4bit": True,
                                          "learning_rate": 5})
    text = str(err.value)
    for part in ("lora_r", "per_device_batch_size", "load_in_4bit needs device 'cuda'", "learning_rate"):
        assert part in text


def test_lora_top_layers_is_off_in_every_preset_and_must_be_positive():
    assert all(resolve_config(name, 100).lora_top_layers is None for name in PRESET_NAMES)
    assert resolve_config("cpu-small", 100, parse_overrides(["lora_top_layers=15"])).lora_top_layers == 15
    with pytest.raises(ConfigError, match="lora_top_layers must be at least 1 or null \\(got 0\\)"):
        resolve_config("cpu-small", 100, {"lora_top_layers": 0})


def test_a_non_numeric_override_is_a_config_error():
    with pytest.raises(ConfigError, match="lora_r='big' is not a int"):
        resolve_config("cpu-small", 10, {"lora_r": "big"})


def test_one_process_runs_the_script_directly():
    cmd = accelerate_command(Path("/r/spec.json"), resolve_config("cpu-small", 10), python="py")
    assert cmd == ["py", "-m", "training.sft", "--spec", "/r/spec.json"]


def test_several_gpus_run_through_accelerate_launch():
    config = resolve_config("gpu-lora", 100, {"num_processes": 4})
    cmd = accelerate_command(Path("/r/spec.json"), config, python="py")
    assert cmd[:3] == ["py", "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "4"
    assert cmd[cmd.index("--mixed_precision") + 1] == "bf16"
    for bf16, mixed in ((None, "bf16"), (False, "no")):
        cmd = accelerate_command(Path("/r/spec.json"), resolve_config("gpu-lora", 100, {
            "num_processes": 2, "bf16": bf16}), python="py")
        assert cmd[cmd.index("--mixed_precision") + 1] == mixed
    assert cmd[-4:] == ["-m", "training.sft", "--spec", "/r/spec.json"]


def test_the_accelerate_command_parses_with_accelerates_own_parser():
    from accelerate.commands.launch import launch_command_parser

    cmd = accelerate_command(Path("/r/spec.json"), resolve_config("gpu-lora", 100, {"num_processes": 2}))
    args = launch_command_parser().parse_args(cmd[3:])
    assert args.num_processes == 2 and args.module and args.training_script == "training.sft"
    assert args.training_script_args == ["--spec", "/r/spec.json"]

