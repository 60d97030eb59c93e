"""The hosted form page: accessible, escaped, no script, ready for a strict CSP."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from connectors.webform.definition import FormDefinition
from connectors.webform.render import (
    FORM_CSS,
    content_security_policy,
    new_nonce,
    render_form,
    render_thanks,
)
from tests.connectors.webform.conftest import contact_form

HOSTILE = '<script>alert(1)</script>"onmouseover=alert(2) x="'


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of the <style> element."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Boolean attributes (required, selected) as "" so that absent is None.
        self.tags.append((tag, {k: "" if v is None else v for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]

    def ids(self) -> set[str]:
        return {str(a["id"]) for _, a in self.tags if a.get("id")}


def hostile_form() -> FormDefinition:
    return contact_form(
        name=f"Contact {HOSTILE}",
        description=HOSTILE,
        language="de",
        fields=[
            {
                "name": "name",
                "label": f"Name {HOSTILE}",
                "required": True,
                "maps_to": "name",
                "help_text": HOSTILE,
                "placeholder": HOSTILE,
            },
            {"name": "email", "label": "Email", "type": "email", "maps_to": "email"},
            {
                "name": "topic",
                "label": "Topic",
                "type": "select",
                "options": [{"value": HOSTILE, "label": HOSTILE}, "b"],
            },
            {"name": "message", "label": "Message", "type": "textarea", "maps_to": "message"},
            {"name": "consent", "label": HOSTILE, "type": "checkbox", "required": True},
        ],
        submit_label=HOSTILE,
    )


def _render(
    form: FormDefinition,
    *,
    nonce: str = "NONCE1",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    page_url: str | None = None,
    referrer: str | None = None,
) -> str:
    return render_form(
        form,
        action_url="/forms/k1",
        nonce=nonce,
        token="tok",
        values=values,
        errors=errors,
        notice=notice,
        page_url=page_url,
        referrer=referrer,
    )


def test_hostile_labels_and_values_are_escaped() -> None:
    html = _render(
        hostile_form(),
        values={"name": HOSTILE, "message": f"</textarea>{HOSTILE}", "topic": HOSTILE},
        errors={"name": HOSTILE},
        notice=HOSTILE,
        page_url=HOSTILE,
        referrer=HOSTILE,
    )
    assert "<script" not in html.lower()
    assert '"onmouseover' not in html
    page = Page(html)
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    # The values are there, as text, not as markup.
    (name_input,) = page.find("input", name="name")
    assert name_input["value"] == HOSTILE
    assert page.find("option", value=HOSTILE)[0].get("selected") is not None
    assert f"</textarea>{HOSTILE}" in "".join(page.text)


def test_no_inline_script_or_style_attributes_and_a_nonced_style() -> None:
    nonce = new_nonce()
    html = _render(contact_form(), nonce=nonce, errors={"name": "x"})
    page = Page(html)
    assert not page.find("script")
    assert all("style" not in attrs for _, attrs in page.tags)
    (style,) = page.find("style")
    assert style == {"nonce": nonce}
    assert FORM_CSS in html


def test_every_control_has_a_label_and_text_inputs_are_dir_auto() -> None:
    page = Page(_render(contact_form()))
    labelled = {str(a["for"]) for a in page.find("label")}
    controls = [
        a
        for t, a in page.tags
        if t in ("input", "select", "textarea") and a.get("type") != "hidden"
    ]
    assert len(controls) == 9  # eight fields and the honeypot
    for control in controls:
        assert control["id"] in labelled, control
    for t, attrs in page.tags:
        typed = t == "textarea" or attrs.get("type") in ("text", "email", "tel")
        if typed and attrs.get("name") != "website":
            assert attrs.get("dir") == "auto", attrs


def test_required_types_autocomplete_and_file_enctype() -> None:
    page = Page(_render(contact_form()))
    (form,) = page.find("form")
    assert form["method"] == "post" and form["action"] == "/forms/k1"
    assert form["enctype"] == "multipart/form-data"
    assert page.find("input", name="name")[0].get("required") is not None
    assert page.find("input", name="email")[0].get("required") is None
    assert page.find("input", name="email")[0]["type"] == "email"
    assert page.find("input", name="email")[0]["autocomplete"] == "email"
    assert page.find("input", name="phone")[0]["type"] == "tel"
    assert page.find("input", name="attachment")[0]["accept"] == "image/png,application/pdf"
    assert page.find("textarea", name="message")[0].get("required") is not None
    assert page.find("input", name="consent")[0]["type"] == "checkbox"
    assert page.find("input", type="hidden", name="_token")[0]["value"] == "tok"
    text_only = contact_form(fields=[{"name": "a", "label": "A"}])
    assert "enctype" not in Page(_render(text_only)).find("form")[0]


def test_errors_are_announced_and_linked() -> None:
    errors = {"name": "This field is required.", "consent": "Tick this box to continue."}
    page = Page(_render(contact_form(), errors=errors))
    (summary,) = page.find("div", id="sb-error-summary")
    assert summary["role"] == "alert" and summary["tabindex"] == "-1"
    links = [a["href"] for a in page.find("a")]
    assert links == ["#f-name", "#f-consent"]
    ids = page.ids()
    for name in errors:
        (control,) = [a for t, a in page.tags if a.get("name") == name and t != "label"]
        assert control["aria-invalid"] == "true"
        described = str(control["aria-describedby"]).split()
        assert f"f-{name}-error" in described
        assert set(described) <= ids
    assert "aria-invalid" not in page.find("input", name="email")[0]
    assert "There is a problem" in "".join(page.text)


def test_no_error_summary_without_errors_but_help_is_described() -> None:
    form = contact_form(
        fields=[{"name": "a", "label": "A", "help_text": "Some help"}, {"name": "b", "label": "B"}]
    )
    page = Page(_render(form))
    assert not page.find("div", id="sb-error-summary")
    assert page.find("input", name="a")[0]["aria-describedby"] == "f-a-help"
    assert "aria-describedby" not in page.find("input", name="b")[0]


def test_a_notice_alone_shows_the_summary() -> None:
    page = Page(_render(contact_form(), notice="Please wait a few seconds."))
    assert page.find("div", id="sb-error-summary")
    assert "Please wait a few seconds." in "".join(page.text)


def test_values_are_refilled() -> None:
    values = {"name": "Ann", "topic": "support", "consent": "on", "message": "Hi\nthere"}
    page = Page(_render(contact_form(), values=values))
    assert page.find("input", name="name")[0]["value"] == "Ann"
    assert page.find("option", value="support")[0].get("selected") is not None
    assert page.find("option", value="sales")[0].get("selected") is None
    assert page.find("input", name="consent")[0].get("checked") is not None
    assert "Hi\nthere" in "".join(page.text)


def test_honeypot_is_hidden_from_people_but_there_for_bots() -> None:
    page = Page(_render(contact_form(honeypot_field="fax")))
    (trap,) = page.find("input", name="fax")
    assert trap["tabindex"] == "-1" and trap["autocomplete"] == "off" and trap["value"] == ""
    (box,) = page.find("div", **{"class": "sb-hp"})
    assert box["aria-hidden"] == "true"
    assert ".sb-hp{position:absolute;left:-10000px" in FORM_CSS


def test_language_and_hidden_attribution_fields() -> None:
    page = Page(
        _render(
            hostile_form(),
            page_url="https://x.example/?utm_source=a",
            referrer="https://r.example/",
        )
    )
    assert page.find("html")[0]["lang"] == "de"
    assert page.find("input", name="_page_url")[0]["value"] == "https://x.example/?utm_source=a"
    assert page.find("input", name="_referrer")[0]["value"] == "https://r.example/"
    assert Page(_render(contact_form())).find("html")[0]["lang"] == "en"


def test_thanks_page() -> None:
    html = render_thanks(contact_form(success_message=HOSTILE, language="fr"), nonce="n")
    assert "<script" not in html
    page = Page(html)
    assert page.find("html")[0]["lang"] == "fr"
    assert HOSTILE in "".join(page.text)
    assert page.find("p", role="status")
    assert "Merci" in render_thanks(contact_form(), nonce="n", message="Merci")


@pytest.mark.parametrize(
    ("overrides", "form_action", "ancestors"),
    [
        ({}, "'self'", "'self' https://shop.example"),
        (
            {"redirect_url": "https://shop.example:8443/thanks?x", "allowed_origins": []},
            "'self' https://shop.example:8443",
            "'self'",
        ),
    ],
)
def test_content_security_policy(
    overrides: dict[str, object], form_action: str, ancestors: str
) -> None:
    policy = content_security_policy(contact_form(**overrides), "N0")
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == "'nonce-N0'"
    assert directives["form-action"] == form_action
    assert directives["frame-ancestors"] == ancestors
    assert "script-src" not in directives  # default-src 'none' covers it: no script at all
