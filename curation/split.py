"""Split long text into chunks that fit a prompt, with ``langchain-text-splitters``.

Documents are split on their Markdown headers first (each chunk keeps its header path as context),
then by size; transcripts by size with overlap, preferring message and paragraph boundaries.
"""

from __future__ import annotations

from langchain_text_splitters import (
    MarkdownHeaderTextSplitter,
    RecursiveCharacterTextSplitter,
)

#: Characters per chunk: about 600 tokens, which leaves room for the prompt and the answer in a
#: 2k-token context (SmolLM2 has 8k; hosted models far more).
CHUNK_CHARS = 2400
OVERLAP_CHARS = 300

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]


def split_transcript(text: str, *, chunk_chars: int = CHUNK_CHARS,
                     overlap_chars: int = OVERLAP_CHARS) -> list[str]:
    """A thread transcript in overlapping chunks, split between messages where possible."""
    if len(text) <= chunk_chars:
        return [text] if text.strip() else []
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_chars, chunk_overlap=overlap_chars,
        separators=["\n\n", "\n", ". ", " ", ""], keep_separator=False,
    )
    return [c for c in splitter.split_text(text) if c.strip()]


def split_markdown(text: str, *, chunk_chars: int = CHUNK_CHARS,
                   overlap_chars: int = OVERLAP_CHARS) -> list[str]:
    """A Markdown (or plain-text) document in chunks: by header section, then by size.

    Each chunk starts with its header path (``# Install > ## Linux``) so that a chunk from the
    middle of a section still says what it is about. Code blocks stay whole where they fit.
    """
    if not text.strip():
        return []
    sections = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True).split_text(text)
    sized = RecursiveCharacterTextSplitter.from_language(
        "markdown", chunk_size=chunk_chars, chunk_overlap=overlap_chars
    )
    chunks = []
    for section in sections:
        path = " > ".join(
            "#" * int(key[1]) + " " + section.metadata[key]
            for key in ("h1", "h2", "h3") if key in section.metadata
        )
        for piece in sized.split_text(section.page_content):
            if piece.strip():
                chunks.append(f"{path}\n\n{piece}" if path else piece)
    return chunks
