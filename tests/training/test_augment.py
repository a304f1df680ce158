"""Alternate question forms for training (pure)."""

from hypothesis import given
from hypothesis import strategies as st

from training.augment import augment_rows, keywords, question_forms, strip_label


def test_labels_are_stripped_only_when_they_lead():
    assert strip_label("Terraform: Error acquiring the state lock") == "Error acquiring the state lock"
    assert strip_label("Course - Can I follow the course after it finishes?") == \
        "Can I follow the course after it finishes?"
    assert strip_label("GCP BQ: Does BigQuery support multiple columns partition?") == \
        "Does BigQuery support multiple columns partition?"
    assert strip_label("Docker-Compose fails") == "Docker-Compose fails"  # a hyphen, not a label
    assert strip_label("How do I reset my VPN password?") == "How do I reset my VPN password?"


def test_keywords_keep_content_words_negations_and_technical_tokens():
    assert keywords("PGCLI - error column c.relhasoids does not exist") == "error column c.relhasoids not exist"
    assert keywords("Terraform: Where can I find the Terraform 1.1.3 Linux (AMD 64)?") == \
        "find Terraform 1.1.3 Linux AMD 64"


def test_forms_are_distinct_and_start_with_the_question():
    assert question_forms("Course: Can I still join the course after the start date?") == [
        "Course: Can I still join the course after the start date?",
        "Can I still join the course after the start date?",
        "join course after start date"]
    assert question_forms("Troubleshooting in dbt:") == ["Troubleshooting in dbt:", "Troubleshooting dbt"]
    assert question_forms("Why?") == ["Why?"]


def test_rows_keep_the_system_prompt_and_answer():
    row = {"messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "VPN: How do I reset my password?"},
                        {"role": "assistant", "content": "Run `vpnctl reset`."}]}
    out = augment_rows([row])
    assert [r["messages"][1]["content"] for r in out] == [
        "VPN: How do I reset my password?", "How do I reset my password?", "reset password"]
    assert all(r["messages"][0] == row["messages"][0] and r["messages"][2] == row["messages"][2] for r in out)
    assert row["messages"][1]["content"] == "VPN: How do I reset my password?"  # input untouched


@given(st.text(max_size=200))
def test_any_text_gives_the_question_first_and_no_repeats(text):
    forms = question_forms(text)
    assert forms[0] == text
    assert len({f.casefold() for f in forms}) == len(forms)
