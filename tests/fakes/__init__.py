"""Fakes of external services: Slack's Web API, signed Slack requests, an OpenAI-compatible LLM."""
