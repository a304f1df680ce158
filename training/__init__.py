"""Training: TRL SFT + PEFT LoRA jobs, the worker, evaluation and the model registry."""
