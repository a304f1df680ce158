"""Reference tables for the README, generated from the code so that they cannot drift."""

from __future__ import annotations

from threadtune.settings import Settings, env_var


def settings_table() -> str:
    """A Markdown table of every setting: variable, default, description."""
    rows = ["| variable | default | what it is |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if name == "data_dir":
            default = "~/.threadtune"
        shown = "—" if default in (None, [], "") else f"`{default}`"
        if name == "system_prompt":
            shown = "(a short support persona)"
        rows.append(f"| `{env_var(name)}` | {shown} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
