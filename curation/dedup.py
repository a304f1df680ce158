"""Near-duplicate questions: a new question that asks the same thing as an existing pair becomes a
*variant* of it.

Two questions are the same when, after dropping the words that only frame a question ("how do I",
"can someone"), every content word of one has a partner in the other: equal after light stemming,
or one typo apart (rapidfuzz Levenshtein) in a long word without digits. So paraphrases merge
("How can I reset my VPN password?" / "how to reset the vpn passwords"), but a question with a
word more or less does not ("How do I reset my VPN password?" / "How do I reset my VPN?"), nor do
"install" and "uninstall" or "python2" and "python3".

In the store, lookup is one probe of an index on the sorted stems (``question_key``), so it costs
the same at 100k pairs as at 10. The typo tolerance of :func:`same_question` applies where two
questions are compared directly (the bench's brute-force baseline, tests); the store lookup
matches questions with the same content-word stems.
"""

from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein
from sqlite_utils import Database

#: Words that frame a question without changing what is asked. Negations are not here on purpose.
FRAMING_WORDS = frozenset(
    """a an the i me my mine we us our you your he she it its they them their this that these those
    how do does did doing done can could should would will shall may might must is are was were be
    been being am to for of in on at by with from about into as so just please pls thanks thank hi
    hello hey anyone someone somebody anybody know knows help way ways what whats which who whom why
    when where there here any some possible best proper correct right really actually still also
    get getting go going want wanted need needs like tell explain guys folks question ask asking
    let lets trying try tried use using""".split()
)

_WORD = re.compile(r"[a-z0-9][a-z0-9+#._-]*[a-z0-9+#]|[a-z0-9]")
_CANDIDATE_LIMIT = 50


def stem(word: str) -> str:
    """A light suffix stemmer: plural, -ing and -ed (enough for question matching)."""
    if any(ch.isdigit() for ch in word):
        return word
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    return word


def content_words(question: str) -> list[str]:
    """The words of ``question`` that say what is asked, in order, not stemmed."""
    words = _WORD.findall((question or "").lower().replace("’", "'"))
    return [w for w in words if w not in FRAMING_WORDS and w.rstrip("'s") not in FRAMING_WORDS]


def content_stems(question: str) -> frozenset[str]:
    """Stemmed content words: the identity of a question for deduplication."""
    return frozenset(stem(w) for w in content_words(question))


def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    if any(ch.isdigit() for ch in a + b) or min(len(a), len(b)) < 5 or a[0] != b[0]:
        return False
    return Levenshtein.distance(a, b, score_cutoff=1) <= 1


def same_question(a: str | frozenset[str], b: str | frozenset[str]) -> bool:
    """Whether two questions ask the same thing (see the module docstring)."""
    sa = content_stems(a) if isinstance(a, str) else a
    sb = content_stems(b) if isinstance(b, str) else b
    if not sa or not sb:
        return False
    if sa == sb:
        return True
    return all(any(_same_word(x, y) for y in sb) for x in sa) and all(
        any(_same_word(y, x) for x in sa) for y in sb
    )


def question_key(question: str) -> str:
    """The stored lookup key: sorted content-word stems (``"password reset vpn"``)."""
    return " ".join(sorted(content_stems(question)))


def find_duplicate(db: Database, team_id: str, question: str, *,
                   exclude_id: int | None = None) -> int | None:
    """Id of a pending or approved pair (not itself a variant) that asks the same as ``question``.

    One probe of the ``(team_id, question_key)`` index, then :func:`same_question` on the hits.
    """
    key = question_key(question)
    if not key:
        return None
    rows = db.execute(
        "select id, question from candidates where team_id = ? and question_key = ? "
        "and status in ('pending', 'approved') and variant_of is null and stale = 0 "
        "order by id limit ?",
        [team_id, key, _CANDIDATE_LIMIT],
    ).fetchall()
    for cid, other in rows:
        if cid != exclude_id and same_question(question, other):
            return int(cid)
    return None
