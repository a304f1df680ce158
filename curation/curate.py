"""The curate run: new threads, announcements and documents in, candidate pairs out.

For each source that is new or changed since the last run (``curated_sources`` keeps the hash of
what was read): scrub the text, split it, ask the LLM for pairs per chunk, and for threads also
build the deterministic pair (rewritten by the LLM when the rewrite passes the checks). Every pair
goes through :func:`curation.candidates.add_candidate`. A source's candidates and its
``curated_sources`` row are written in one transaction, so a run killed half-way leaves the store
consistent and the rerun picks up where it stopped, with no duplicates.

LLM calls run ``concurrency`` sources at a time on worker threads (vLLM batches them; with
``transformers serve`` they queue); SQLite writes stay on the caller's thread.

curation/ takes plain values (:class:`curation.llm.LLMConfig`), not the app's Settings; with no
endpoint URL, :func:`curation.llm.llm_session` serves the base model for the run.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz
from sqlite_utils import Database

from curation import checks
from curation.candidates import add_candidate
from curation.deterministic import draft, rewritten
from curation.errors import CurationError
from curation.extract import EXTRACT_PROMPT, LLM, extract_pairs, load_prompt
from curation.pii import scrub
from curation.rows import VALID_TS_SQL, valid_ts
from curation.split import split_markdown, split_transcript
from curation.store import now, transaction
from curation.transcript import build_transcript, channel_names, display_names, render_text
from serving.errors import ServingError

if TYPE_CHECKING:
    from curation.llm import LLMConfig

log = logging.getLogger(__name__)

#: A top-level message without replies this long, and asking nothing, is read as an announcement.
ANNOUNCEMENT_MIN_CHARS = 400

Progress = Callable[[int, int, str], None]


@dataclass
class Source:
    """One thing to curate: its scrubbed text, chunks and provenance."""

    kind: str  # thread | announcement | document
    key: str
    text: str
    content_hash: str
    sources: list[dict[str, Any]]
    transcript: Any = None  # curation.transcript.Transcript for threads
    #: A run without an LLM already made this unchanged thread's deterministic pair: only the
    #: LLM's extraction is left to do.
    llm_only: bool = False


@dataclass
class Proposal:
    """A pair proposed for one source, before it is stored."""

    question: str
    answer: str
    origin: str
    prompt_version: str
    source_text: str
    evidence: str = ""
    scores: dict[str, Any] = field(default_factory=dict)


@dataclass
class CurateReport:
    """What a run did."""

    sources: Counter = field(default_factory=Counter)  # kind -> sources read
    skipped: int = 0  # unchanged since the last run
    waiting_for_llm: int = 0  # announcements and documents left for a run with an LLM
    chunks: int = 0
    candidates: Counter = field(default_factory=Counter)  # status -> new candidates
    duplicates: int = 0
    llm_errors: list[str] = field(default_factory=list)
    bad_rows: int = 0  # stored messages with a malformed ts, left out (never a reason to stop)
    replies: int = 0  # LLM replies received
    parsed: int = 0  # of which held the JSON asked for
    cut: int = 0  # replies cut off because the model looped

    @property
    def parse_rate(self) -> float | None:
        """Share of LLM replies that parsed (None without any reply)."""
        return round(self.parsed / self.replies, 3) if self.replies else None

    def as_dict(self) -> dict[str, Any]:
        return {"sources": dict(self.sources), "skipped": self.skipped,
                "waiting_for_llm": self.waiting_for_llm, "chunks": self.chunks,
                "candidates": dict(self.candidates), "duplicates": self.duplicates,
                "llm_errors": len(self.llm_errors), "bad_rows": self.bad_rows, "llm_replies": self.replies,
                "parse_rate": self.parse_rate, "cut_looping": self.cut}

    def summary(self) -> str:
        read = ", ".join(f"{n} {k}s" for k, n in sorted(self.sources.items())) or "nothing new"
        made = ", ".join(f"{n} {s}" for s, n in sorted(self.candidates.items())) or "no candidates"
        errors = f"; {len(self.llm_errors)} LLM errors" if self.llm_errors else ""
        if self.replies:
            errors += f"; {self.parsed}/{self.replies} LLM replies parsed" + (
                f" ({self.cut} cut off looping)" if self.cut else "")
        waiting = (f"; {self.waiting_for_llm} announcements/documents wait for a run with an LLM"
                   if self.waiting_for_llm else "")
        bad = (f"; {self.bad_rows} stored messages with a malformed ts left out"
               if self.bad_rows else "")
        return f"read {read} ({self.skipped} unchanged); {made}{errors}{waiting}{bad}"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# --- finding sources -------------------------------------------------------------------------


def _done(db: Database, team_id: str) -> dict[tuple[str, str], tuple[str, bool]]:
    return {(r[0], r[1]): (r[2], bool(r[3])) for r in db.execute(
        "select kind, key, content_hash, llm from curated_sources where team_id = ?", [team_id]).fetchall()}


def find_sources(db: Database, team_id: str, *, answered_reaction: str = "white_check_mark",
                 limit: int | None = None, report: CurateReport | None = None,
                 llm: bool = True) -> list[Source]:
    """Threads, announcements and documents that are new or changed since they were last curated.

    With ``llm`` a source that a run without an LLM read is read again (the LLM may find pairs in
    it); without, only threads are returned, since the rest needs the LLM.
    """
    report = report or CurateReport()
    done = _done(db, team_id)
    names, channels = display_names(db, team_id), channel_names(db, team_id)
    found: list[Source] = []

    def want(kind: str, key: str, text: str) -> str | None:
        digest = _hash(text)
        if kind != "thread" and not llm:
            report.waiting_for_llm += 1
            return None
        seen_hash, seen_with_llm = done.get((kind, key), (None, False))
        if seen_hash == digest and (seen_with_llm or not llm):
            report.skipped += 1
            return None
        return digest

    def read_without_llm(kind: str, key: str, digest: str) -> bool:
        return done.get((kind, key)) == (digest, False)

    # One pass over every threaded message (not one query per thread): a rerun over thousands
    # of unchanged threads stays a few seconds.
    by_thread: dict[tuple[str, str], list[dict]] = {}
    for row in db.query("select * from messages where team_id = ?", [team_id]):
        if not valid_ts(row["ts"]) or (row["thread_ts"] and not valid_ts(row["thread_ts"])):
            report.bad_rows += 1  # stored by an older version that did not check ts
            continue
        # A root stored before its replies arrived may still have thread_ts NULL.
        by_thread.setdefault((row["channel_id"], row["thread_ts"] or row["ts"]), []).append(row)
    roots = sorted(((ch, ts) for (ch, ts), rows in by_thread.items()
                    if any(r["ts"] == ts and not r["deleted"] for r in rows)
                    and any(r["ts"] != ts and not r["deleted"] for r in rows)),
                   key=lambda key: float(key[1]))
    for channel_id, ts in roots:
        if limit is not None and len(found) >= limit:
            return found
        transcript = build_transcript(by_thread[(channel_id, ts)], channel_id, ts, names=names,
                                      channels=channels, answered_reaction=answered_reaction)
        if len(transcript.turns) < 2:
            continue
        text = scrub(transcript.text).text
        digest = want("thread", f"{channel_id}:{ts}", text)
        if digest:
            found.append(Source("thread", f"{channel_id}:{ts}", text, digest,
                                [{"kind": "message", "channel_id": channel_id, "ts": ts}], transcript,
                                llm_only=read_without_llm("thread", f"{channel_id}:{ts}", digest)))
    for channel_id, ts, raw in db.execute(
        "select channel_id, ts, text from messages m where team_id = ? and deleted = 0 and "
        "bot_id is null and coalesce(subtype, '') in ('', 'thread_broadcast') and length(text) >= ? "
        "and (thread_ts is null or thread_ts = ts) and text not like '%?%' and not exists "
        "(select 1 from messages r where r.team_id = m.team_id and r.channel_id = m.channel_id "
        f"and r.thread_ts = m.ts and r.ts != m.ts) and {VALID_TS_SQL} order by cast(ts as real)",
        [team_id, ANNOUNCEMENT_MIN_CHARS]).fetchall():
        if limit is not None and len(found) >= limit:
            return found
        text = scrub(render_text(raw, names, channels)).text
        digest = want("announcement", f"{channel_id}:{ts}", text)
        if digest:
            found.append(Source("announcement", f"{channel_id}:{ts}", text, digest,
                                [{"kind": "message", "channel_id": channel_id, "ts": ts}]))
    for doc in db.query("select id, title, text from documents where team_id = ? and deleted = 0 "
                        "order by id", [team_id]):
        if limit is not None and len(found) >= limit:
            return found
        text = scrub(doc["text"]).text
        digest = want("document", str(doc["id"]), text)
        if digest:
            found.append(Source("document", str(doc["id"]), text, digest,
                                [{"kind": "document", "document_id": doc["id"]}]))
    return found


# --- proposing pairs (LLM calls, no store access) --------------------------------------------


def _evidence_check(evidence: str, source: str) -> checks.Check:
    if not evidence.strip():
        return checks.Check(0.5, True, "no evidence quoted")
    score = fuzz.partial_ratio(evidence.lower(), source.lower()) / 100
    if score >= 0.9:
        return checks.Check(round(score, 3), True, "evidence found in the source")
    return checks.Check(round(score, 3), False, "the quoted evidence is not in the source")


def propose(source: Source, llm: LLM | None) -> tuple[list[Proposal], list[str], int]:
    """Pairs for one source: ``(proposals, errors, chunks)``. Runs on a worker thread."""
    proposals: list[Proposal] = []
    errors: list[str] = []
    if source.kind == "thread" and source.transcript is not None and not source.llm_only:
        base = draft(source.transcript)
        if base is not None:
            base = type(base)(scrub(base.question).text, scrub(base.answer).text, base.source_ts,
                              base.method, base.prompt_version)
            final = rewritten(base, source.text, llm)
            scores: dict[str, Any] = dict(final.scores or {})
            scores["method"] = {"score": 1.0, "passed": True, "reason": final.method}
            proposals.append(Proposal(final.question, final.answer, "deterministic",
                                      final.prompt_version, source.text, scores=scores))
    chunks = split_transcript(source.text) if source.kind == "thread" else split_markdown(source.text)
    if llm is None:
        return proposals, errors, len(chunks)
    prompt = load_prompt(EXTRACT_PROMPT)
    for chunk in chunks:
        try:
            pairs = extract_pairs(llm, chunk, source.kind)
        except CurationError as err:
            errors.append(f"{source.kind} {source.key}: {err}")
            continue
        for pair in pairs:
            scores = {
                "grounding": checks.grounding(pair.answer, chunk),
                "evidence": _evidence_check(pair.evidence, chunk),
                "prompt_leak": checks.prompt_leak(pair.question + "\n" + pair.answer, prompt.system),
            }
            proposals.append(Proposal(pair.question, pair.answer, source.kind, prompt.version, chunk,
                                      pair.evidence, scores))
    return proposals, errors, len(chunks)


# --- the run ---------------------------------------------------------------------------------


def _store(db: Database, team_id: str, source: Source, proposals: list[Proposal],
           report: CurateReport, *, with_llm: bool) -> None:
    with transaction(db):
        made = 0
        for p in proposals:
            added = add_candidate(db, team_id, p.question, p.answer, origin=p.origin,
                                  sources=source.sources, prompt_version=p.prompt_version,
                                  evidence=p.evidence, scores=p.scores, created_by="curate",
                                  source_text=p.source_text)
            if added.created:
                made += 1
                report.candidates[added.status] += 1
            else:
                report.duplicates += 1
        db["curated_sources"].upsert(
            {"team_id": team_id, "kind": source.kind, "key": source.key,
             "content_hash": source.content_hash, "n_candidates": made, "curated_at": now(),
             "llm": int(with_llm)},
            pk=("team_id", "kind", "key"),
        )


def curate(db: Database, team_id: str, llm: LLM | None, *, answered_reaction: str = "white_check_mark",
           limit: int | None = None, concurrency: int = 1, progress: Progress | None = None,
           sources: list[Source] | None = None, report: CurateReport | None = None) -> CurateReport:
    """Curate what is new for ``team_id``. ``llm=None`` makes deterministic thread pairs only.

    ``progress(done, total, label)`` is called after each source.
    """
    report = report or CurateReport()
    if sources is None:
        sources = find_sources(db, team_id, answered_reaction=answered_reaction, limit=limit,
                               report=report, llm=llm is not None)
    total = len(sources)
    if progress:
        progress(0, total, "starting")
    before = (llm.replies, llm.parsed, llm.cut) if llm else (0, 0, 0)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="curate") as pool:
        futures = [pool.submit(propose, s, llm) for s in sources]
        try:
            for done, (source, future) in enumerate(zip(sources, futures, strict=True), start=1):
                proposals, errors, chunks = future.result()
                report.sources[source.kind] += 1
                report.chunks += chunks
                report.llm_errors += errors
                _store(db, team_id, source, proposals, report, with_llm=llm is not None)
                if progress:
                    progress(done, total, f"{source.kind} {source.key}")
        finally:
            for future in futures:  # Ctrl-C or a failed write: what has not started never starts
                future.cancel()
            if llm is not None:
                report.replies += llm.replies - before[0]
                report.parsed += llm.parsed - before[1]
                report.cut += llm.cut - before[2]
    return report


# --- the LLM for a run -----------------------------------------------------------------------


def run_curate(db: Database, team_id: str, llm: LLMConfig | None, *,
               answered_reaction: str = "white_check_mark", limit: int | None = None,
               concurrency: int | None = None, progress: Progress | None = None) -> CurateReport:
    """A whole curate run as the CLI, the worker and the demo do it (the LLM started and stopped
    here). ``llm=None`` makes deterministic thread pairs only. ``concurrency`` None: 4 sources in
    flight on vLLM, one at a time otherwise."""
    report = CurateReport()
    sources = find_sources(db, team_id, answered_reaction=answered_reaction, limit=limit,
                           report=report, llm=llm is not None)
    if llm is None or not sources:  # nothing new: no model server to start
        return curate(db, team_id, None, answered_reaction=answered_reaction,
                      progress=progress, sources=sources, report=report)
    from curation.llm import VLLM_CONCURRENCY, llm_session

    with llm_session(llm) as model:
        if concurrency is None:
            concurrency = VLLM_CONCURRENCY if model.batching else 1
        return curate(db, team_id, model, answered_reaction=answered_reaction,
                      concurrency=concurrency, progress=progress, sources=sources, report=report)
