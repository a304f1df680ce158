"""Alternate forms of a training question, so that an adapter learns to answer what is asked rather
than one wording of it (pure functions).

A support FAQ asks each question once, in one wording, often behind a topic label ("Terraform:
Error acquiring the state lock"). People in Slack ask the same thing without the label, in fewer
words, or as a bare search ("terraform state lock error"). Each pair is also trained as:

- its question without the leading topic label, when it has one;
- its question's content words: no label, stopwords or punctuation, negations kept.

The answer is the same in every form; forms that add nothing (equal to another, or under two words)
are dropped.
"""

from __future__ import annotations

import re
from typing import Any

#: Function words dropped from the keyword form. Negations ("not", "no") stay: they carry meaning.
STOPWORDS = frozenset("""
a an the i me my we our you your it its is are was were be been am do does did to of in on at for
with by from and or but if then so as that this these those can could should would will shall may
might must how what when where which who why there here have has had yes any some just still really
please
""".split())
#: "Course: …", "Terraform - …", "GCP BQ: …": a short label, then a colon or a spaced dash.
LABEL = re.compile(r"^\s*\w[\w .+/#-]{0,30}?\s*[:–-]\s+(?=\S)")
WORD = re.compile(r"[\w.+#/-]+")


def strip_label(question: str) -> str:
    """The question without a leading topic label ("Course: Can I…" → "Can I…")."""
    match = LABEL.match(question)
    return question[match.end():] if match else question


def keywords(question: str) -> str:
    """The content words of the question, label and stopwords removed, in their order."""
    words = (w.strip(".,/-") for w in WORD.findall(strip_label(question)))
    return " ".join(w for w in words if w and w.lower() not in STOPWORDS)


def question_forms(question: str) -> list[str]:
    """``question`` first, then its distinct alternate forms."""
    forms = [question]
    for form in (strip_label(question).strip(), keywords(question)):
        if len(form.split()) >= 2 and form.casefold() not in {f.casefold() for f in forms}:
            forms.append(form)
    return forms


def augment_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each ``messages`` row followed by copies whose last user turn is an alternate form."""
    out = []
    for row in rows:
        messages = row["messages"]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        for form in question_forms(messages[last_user]["content"]):
            out.append({**row, "messages": [
                {**m, "content": form} if i == last_user else m for i, m in enumerate(messages)]})
    return out
