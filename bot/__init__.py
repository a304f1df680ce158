"""The Slack app (slack-bolt): listeners, slash commands, Block Kit builders, review and answers.

Never imports training/, torch or transformers: the bot queues jobs and the worker runs them."""

import curation  # noqa: E402,F401  (first: sqlite-utils without pandas, see curation/__init__.py)
