"""Placeholder rendering (inbox/placeholders.py): pure, no database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inbox.placeholders import PLACEHOLDERS, render, unknown_placeholders


def test_values_fallbacks_and_unknown_names() -> None:
    values = {"contact.first_name": "Ann", "agent.name": None}
    template = "Hi {{contact.first_name}}, {{ agent.name | your agent }} here. {{contact.frist}}"
    assert render(template, values) == "Hi Ann, your agent here. {{contact.frist}}"
    assert render("{{agent.name}}!", values) == "!"
    assert unknown_placeholders(template + " {{contact.frist}} {{x.y}}") == ["contact.frist", "x.y"]
    assert unknown_placeholders("{{ contact.name }} {{channel.name|shop}}") == []


def test_a_value_is_never_expanded_again() -> None:
    # A contact who names herself "{{agent.email}}" gets her name, not the agent's address.
    values = {"contact.name": "{{agent.email}}", "agent.email": "bob@example.com"}
    assert render("Dear {{contact.name}}", values) == "Dear {{agent.email}}"


@given(
    template=st.text(alphabet=st.sampled_from("{} |ab.c_"), max_size=60),
    value=st.text(max_size=20),
)
def test_render_never_fails_and_keeps_text_without_placeholders(template: str, value: str) -> None:
    values = dict.fromkeys(PLACEHOLDERS, value)
    rendered = render(template, values)
    assert isinstance(rendered, str)
    if "{{" not in template:
        assert rendered == template
