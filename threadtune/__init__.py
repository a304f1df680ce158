"""threadtune: turn a team's Slack support chat into a tuned assistant."""

__version__ = "0.1.0"
