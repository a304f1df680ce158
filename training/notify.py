"""Where a job's progress is shown: a rich progress bar in the terminal, or one Slack message that
is updated in place with ``chat.update`` (at most every ``min_interval_s``) and ends with the result.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol

from curation.job_text import describe
from curation.status_message import StatusMessage
from curation.update_budget import UpdateBudget

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """Receives a job's lifecycle: start, progress (often), finish (once)."""

    def start(self, job: dict[str, Any]) -> None: ...

    def progress(self, job: dict[str, Any], progress: dict[str, Any]) -> None: ...

    def finish(self, job: dict[str, Any], *, files: list[Path] | None = None) -> None: ...


class SilentNotifier:
    """For jobs nobody watches (tests, the worker without a terminal)."""

    def start(self, job: dict[str, Any]) -> None:
        pass

    def progress(self, job: dict[str, Any], progress: dict[str, Any]) -> None:
        pass

    def finish(self, job: dict[str, Any], *, files: list[Path] | None = None) -> None:
        pass


class TerminalNotifier:
    """A rich progress bar: step/total with loss, tokens/s and ETA."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._bar: Any = None
        self._task: Any = None

    def start(self, job: dict[str, Any]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn(f"[bold]job {job['id']} {job['kind']}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("{task.description}"),
                             TimeRemainingColumn(), console=self.console, transient=False)
        self._bar.start()
        self._task = self._bar.add_task("starting", total=None)

    def progress(self, job: dict[str, Any], progress: dict[str, Any]) -> None:
        if self._bar is None:
            self.start(job)
        text = "  ".join(f"{k} {progress[k]}" for k in ("loss", "tokens_per_s") if progress.get(k) is not None)
        self._bar.update(self._task, completed=progress.get("step", 0), total=progress.get("total"),
                         description=text or progress.get("phase", ""))

    def finish(self, job: dict[str, Any], *, files: list[Path] | None = None) -> None:
        if self._bar is not None:
            self._bar.stop()
        self.console.print(describe(job))
        for path in files or []:
            self.console.print(f"  {path}")


def slack_client(token: str, base_url: str | None = None) -> Any:
    """The worker's ``slack_sdk.WebClient``: it waits out 429s (Retry-After) and retries dropped
    connections, so that a rate limit on the last update never leaves a job saying it still runs."""
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

    client = WebClient(token=token, base_url=base_url or WebClient.BASE_URL, timeout=30)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=5))
    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=2))
    return client


class SlackNotifier:
    """One status message per job (:class:`curation.status_message.StatusMessage`), posted once and
    then edited in place.

    ``client`` is a ``slack_sdk.WebClient`` (:func:`slack_client`). Progress edits closer than
    ``min_interval_s`` apart, or beyond the workspace's chat.update ``budget`` (shared with the bot
    through the store), are dropped; the final one is always sent. Report files are uploaded into the message's thread (``files_upload_v2``:
    getUploadURLExternal + completeUploadExternal).
    """

    def __init__(self, client: Any, channel: str, ts: str | None = None, *, budget: UpdateBudget,
                 min_interval_s: float = 10.0, clock: Any = time.monotonic, team_id: str = "") -> None:
        self.client, self.channel = client, channel
        self.message = StatusMessage(client, channel, ts=ts, team_id=team_id, min_interval_s=min_interval_s,
                                     clock=clock, budget=budget)

    @property
    def ts(self) -> str | None:
        """The status message's ts (None until it is posted)."""
        return self.message.ts

    def start(self, job: dict[str, Any]) -> None:
        self.message.update(f":hourglass_flowing_sand: {describe(job)}", final=True)

    def progress(self, job: dict[str, Any], progress: dict[str, Any]) -> None:
        if self.message.due():
            running = {**job, "progress": progress, "status": "running"}
            self.message.update(f":hourglass_flowing_sand: {describe(running)}")

    def finish(self, job: dict[str, Any], *, files: list[Path] | None = None) -> None:
        icon = {"done": ":white_check_mark:", "cancelled": ":no_entry_sign:"}.get(job["status"], ":x:")
        self.message.update(f"{icon} {describe(job)}", final=True)
        from slack_sdk.errors import SlackApiError, SlackClientError

        for path in files or []:
            try:
                self.client.files_upload_v2(channel=self.channel, thread_ts=self.ts, file=str(path),
                                            filename=Path(path).name, title=Path(path).name)
            except (SlackApiError, SlackClientError, OSError) as err:
                log.warning("job %s: uploading %s to Slack failed: %s", job.get("id"), path, err)
