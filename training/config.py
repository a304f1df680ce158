"""The schedule of a training run: epochs and learning rate derived from the dataset size.

The config fields, presets and checks are shared ground in ``curation/train_config.py`` (the bot
checks `/threadtune train` with them without importing training/); this module adds what only a
run needs, once the dataset is known.
"""

from __future__ import annotations

import math
from typing import Any

from curation.train_config import TrainConfig, build_config


def derive_schedule(n_train: int, base_learning_rate: float) -> tuple[float, float]:
    """Epochs and learning rate for ``n_train`` pairs when the user gave neither (alternate
    question forms do not count: they are more views of the same pairs).

    Small datasets need more passes to learn their facts and tolerate a higher rate; large ones get
    three passes at the base rate. About 600 examples are seen in all, within 3..12 epochs; the rate
    grows with sqrt(500 / n) up to 4x the base.
    """
    n = max(n_train, 1)
    epochs = float(min(12, max(3, math.ceil(600 / n))))
    lr = base_learning_rate * min(4.0, max(1.0, math.sqrt(500 / n)))
    return epochs, lr


def resolve_config(preset: str, n_train: int, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Preset + overrides + derived schedule → a validated TrainConfig."""
    config = build_config(preset, overrides)
    epochs, lr = derive_schedule(n_train, config.base_learning_rate)
    if config.epochs is None:
        config.epochs = epochs
    if config.learning_rate is None:
        config.learning_rate = lr
    return config
