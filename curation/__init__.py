"""Curation: the store, sources to text, prompts, quality checks, review state and datasets.

Never imports slack_bolt, slack_sdk, torch or transformers."""
