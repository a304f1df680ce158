"""Answer-quality metrics: token F1, ROUGE-L (rouge-score), key-fact recall and wrong facts. Pure."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_URL = re.compile(r"https?://[^\s)\]>\"'`]+")
_CODE = re.compile(r"`([^`\n]{2,200})`")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:/]\d+)*")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zA-Z0-9]+(?:[.\-_][A-Za-z0-9]+)*|[a-z]+[A-Z]\w*)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> list[str]:
    """SQuAD-style tokens: lower case, no punctuation, no articles."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return text.split()


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (SQuAD's F1)."""
    pred, ref = normalize(prediction), normalize(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure from Google's rouge-score package (with stemming)."""
    return float(_scorer().score(reference, prediction)["rougeL"].fmeasure)


def key_facts(reference: str) -> set[str]:
    """Numbers, URLs, inline code/commands and proper names in ``reference``, lower-cased."""
    facts: set[str] = set()
    text = reference
    for url in _URL.findall(text):
        facts.add(url.rstrip(".,;:!?").lower())
    text = _URL.sub(" ", text)
    for code in _CODE.findall(text):
        facts.add(code.strip().lower())
    text = _CODE.sub(" ", text)
    facts.update(n.lower() for n in _NUMBER.findall(text))
    for line in text.splitlines():
        for sentence in re.split(r"(?<=[.!?:])\s+", line.strip(" -*#>")):
            words = sentence.split(maxsplit=1)
            if len(words) == 2:  # skip the sentence's first word: capitalised by grammar, not a name
                facts.update(m.lower() for m in _NAME.findall(words[1]))
    return {f for f in facts if f}


def fact_recall(prediction: str, reference: str) -> float | None:
    """Share of the reference's key facts found in the prediction; None when it has none."""
    facts = key_facts(reference)
    if not facts:
        return None
    pred = prediction.lower()
    return sum(f in pred for f in facts) / len(facts)


def hard_facts(text: str) -> list[str]:
    """Numbers, URLs and inline code or commands in ``text``: what a wrong answer gets wrong."""
    facts = [u.rstrip(".,;:!?") for u in _URL.findall(text)]
    rest = _URL.sub(" ", text)
    facts += [c.strip() for c in _CODE.findall(rest) if c.strip()]
    facts += _NUMBER.findall(_CODE.sub(" ", rest))
    return list(dict.fromkeys(f for f in facts if f))


def _has(text: str, fact: str) -> bool:
    t, low = fact.lower(), text.lower()
    if re.fullmatch(r"[\d.,:/]+", t):
        return re.search(rf"(?<![\d]){re.escape(t)}(?![\d])", low) is not None
    return t in low


def wrong_facts(prediction: str, reference: str,
                known: Callable[[list[str]], set[str]] | None = None) -> list[str]:
    """The numbers, URLs and commands of ``prediction`` that are not in ``reference`` and (``known``:
    those some approved pair holds) in no approved pair."""
    missing = [f for f in hard_facts(prediction) if not _has(reference, f)]
    if missing and known is not None:
        found = known(missing)
        missing = [f for f in missing if f not in found]
    return missing


def mean(values: list[float | None]) -> float | None:
    """Mean of the values that are not None (None when there are none)."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None
