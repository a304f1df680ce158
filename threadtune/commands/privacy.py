"""CLI: forget a user, remove a document, purge by retention. Each ends by erasing the residue
(FTS segments, the WAL) so that the text is in no byte of the store."""

from __future__ import annotations

import typer

from threadtune.shell import console, fail, open_db, settings, user_errors


def register(app: typer.Typer) -> None:
    """Add forget and purge to ``app``."""

    @app.command()
    @user_errors
    def forget(
        user: str = typer.Argument(..., help="Slack user id (U…) whose data is removed."),
        actor: str = typer.Option("cli", help="Who asks, for the audit log."),
    ) -> None:
        """Remove a user's messages, mark pairs derived from them stale, and audit it."""
        from curation.erasure import erase_residue
        from curation.privacy import forget_user

        s = settings()
        db = open_db(s)
        result = forget_user(db, s.team_id, user.lstrip("@"), actor=actor, via="cli")
        erase_residue(db)
        console.print(f"forgot {user}: {result.summary()}")
        if result.stale_candidates:
            console.print("stale pairs leave the next dataset version; adapters trained before must be "
                          "retrained to forget what they learned (README 'Privacy').")

    @app.command()
    @user_errors
    def purge(
        days: int = typer.Option(0, help="Purge raw messages older than this many days "
                                 "(default: THREADTUNE_RETENTION_DAYS)."),
    ) -> None:
        """Purge raw messages older than the retention period; curated pairs stay."""
        from curation.erasure import erase_residue
        from curation.privacy import purge_older_than

        s = settings()
        days = days or s.retention_days or 0
        if days < 1:
            fail("no retention period: pass --days N or set THREADTUNE_RETENTION_DAYS")
        db = open_db(s)
        result = purge_older_than(db, s.team_id, days, actor="cli", via="cli")
        erase_residue(db)
        console.print(f"purged {result.messages} messages older than {days} days")

    @app.command("remove-doc")
    @user_errors
    def remove_doc(
        document_id: int = typer.Argument(..., help="Document id (as `threadtune add-doc` printed it)."),
        actor: str = typer.Option("cli", help="Who asks, for the audit log."),
    ) -> None:
        """Remove a document's text and redact the pairs drawn from it (datasets holding them are
        superseded)."""
        from curation.erasure import erase_document, erase_residue

        s = settings()
        db = open_db(s)
        ids = erase_document(db, s.team_id, document_id, actor=actor, via="cli")
        erase_residue(db)
        console.print(f"removed document {document_id}; {len(ids)} pairs drawn from it redacted")
