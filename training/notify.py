"""Where a job's progress is shown: a rich progress bar in the terminal, or one Slack message that
is updated in place with ``chat.update`` (at most every ``min_interval_s``) and ends with the result.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol

from curation.job_text import describe

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


class SlackNotifier:
    """One status message per job, posted once and then edited with ``chat.update``.

    ``client`` is a ``slack_sdk.WebClient``. Updates closer than ``min_interval_s`` apart are
    dropped (Slack rate-limits chat.update); the final one is always sent. Report files are
    uploaded into the message's thread (``files_upload_v2``: getUploadURLExternal +
    completeUploadExternal).
    """

    def __init__(self, client: Any, channel: str, ts: str | None = None, *, min_interval_s: float = 10.0,
                 clock: Any = time.monotonic) -> None:
        self.client, self.channel, self.ts = client, channel, ts
        self.min_interval_s, self.clock = min_interval_s, clock
        self._last: float | None = None

    def _send(self, job: dict[str, Any], text: str) -> None:
        from slack_sdk.errors import SlackApiError, SlackClientError

        self._last = self.clock()
        try:
            if self.ts is None:
                self.ts = self.client.chat_postMessage(channel=self.channel, text=text)["ts"]
            else:
                self.client.chat_update(channel=self.channel, ts=self.ts, text=text)
        except (SlackApiError, SlackClientError, OSError) as err:  # Slack trouble never stops a job
            log.warning("job %s: Slack status update failed: %s", job.get("id"), err)

    def start(self, job: dict[str, Any]) -> None:
        self._send(job, f":hourglass_flowing_sand: {describe(job)}")

    def progress(self, job: dict[str, Any], progress: dict[str, Any]) -> None:
        if self._last is not None and self.clock() - self._last < self.min_interval_s:
            return
        self._send({**job, "progress": progress, "status": "running"},
                   f":hourglass_flowing_sand: {describe({**job, 'progress': progress, 'status': 'running'})}")

    def finish(self, job: dict[str, Any], *, files: list[Path] | None = None) -> None:
        icon = {"done": ":white_check_mark:", "cancelled": ":no_entry_sign:"}.get(job["status"], ":x:")
        self._send(job, f"{icon} {describe(job)}")
        from slack_sdk.errors import SlackApiError, SlackClientError

        for path in files or []:
            try:
                self.client.files_upload_v2(channel=self.channel, thread_ts=self.ts, file=str(path),
                                            filename=Path(path).name, title=Path(path).name)
            except (SlackApiError, SlackClientError, OSError) as err:
                log.warning("job %s: uploading %s to Slack failed: %s", job.get("id"), path, err)
