"""The embed script and the public description it renders from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import connectors.webform
from connectors.webform.embed import embed_script, form_urls, public_description, script_json
from tests.connectors.webform.conftest import contact_form

SCRIPT = Path(connectors.webform.__file__).parent / "static" / "embed.js"


def test_the_script_never_writes_html() -> None:
    source = SCRIPT.read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert sink not in source, sink
    # Everything it draws goes through createElement and textContent.
    assert "createElement" in source and "textContent" in source
    assert "fetch(" in source and "FormData" in source


def test_embed_script_carries_the_key_and_description_url() -> None:
    script = embed_script("https://hub.example/", "frm_abc")
    config = re.search(r"var CONFIG = (\{.*?\});", script)
    assert config is not None
    assert json.loads(config.group(1)) == {
        "key": "frm_abc",
        "descriptionUrl": "https://hub.example/forms/frm_abc/form.json",
    }
    assert "/*SWITCHBOARD_CONFIG*/" not in script
    assert script.count("frm_abc") == 2


def test_embed_script_config_cannot_break_out() -> None:
    script = embed_script("https://hub.example", 'k</script><script>alert(1)//"\u2028')
    config = script[script.index("var CONFIG") : script.index(";\n", script.index("var CONFIG"))]
    assert "</script" not in config and "<" not in config and "\u2028" not in config
    assert script_json("a&b<c>") == '"a\\u0026b\\u003cc\\u003e"'


def test_form_urls() -> None:
    urls = form_urls("https://hub.example/base/", "a/b")
    assert urls == {
        "page": "https://hub.example/base/forms/a%2Fb",
        "submit": "https://hub.example/base/forms/a%2Fb",
        "description": "https://hub.example/base/forms/a%2Fb/form.json",
        "script": "https://hub.example/base/forms/a%2Fb/embed.js",
    }


def test_public_description_has_what_a_browser_needs_and_nothing_internal() -> None:
    form = contact_form(team_id="team-secret", require_token=True, language="de")
    described = public_description(form, "tok", submit_url="https://hub.example/forms/k")
    text = json.dumps(described)
    for internal in (
        "chan-1",
        "team-secret",
        "shop.example",
        "maps_to",
        "attribute:",
        "require_token",
    ):
        assert internal not in text, internal
    assert described["token"] == "tok"
    assert described["token_field"] == "_token"
    assert described["honeypot_field"] == "website"
    assert described["encoding"] == "multipart"
    assert described["language"] == "de"
    assert described["submit_url"] == "https://hub.example/forms/k"
    fields = {f["name"]: f for f in described["fields"]}
    assert list(fields) == [f.name for f in form.fields]
    assert fields["topic"]["options"] == [
        {"value": "sales", "label": "sales"},
        {"value": "support", "label": "Customer support"},
    ]
    assert fields["attachment"]["accept"] == ["image/png", "application/pdf"]
    assert fields["attachment"]["max_bytes"] == 1024
    assert fields["email"]["autocomplete"] == "email"
    assert fields["message"]["max_length"] == 10_000
    assert fields["name"]["required"] is True
    assert "max_length" not in fields["consent"]
    assert described["success"] == {
        "message": form.success_message,
        "redirect_url": None,
    }


def test_a_form_without_files_posts_json() -> None:
    form = contact_form(fields=[{"name": "a", "label": "A"}])
    assert public_description(form, None, submit_url="/f")["encoding"] == "json"
