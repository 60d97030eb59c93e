// The canned response editor (templates/admin/policies/canned_edit.html): the team
// picker shown for team responses, placeholders inserted at the cursor, a preview
// rendered by the API as the text changes (POST /api/v1/canned-responses/preview, with a
// sample contact; an unknown placeholder is named at the field at once), and the
// response sent to /api/v1/canned-responses (POST when new, PATCH when changed).
import { ApiError, api } from "../api.js";
import { on, qs, setText } from "../dom.js";
import { setFieldError, submitting } from "./policies_forms.js";

const PREVIEW_DELAY_MS = 250;
const form = qs("#canned-form");

function previewer(text, preview) {
  let timer = null;
  let running = null;
  const show = async () => {
    running?.abort();
    const value = text.value;
    if (!value.trim()) {
      setText(preview, preview.dataset.empty);
      preview.dataset.state = "empty";
      setFieldError(form, "text", null);
      return;
    }
    const controller = new AbortController();
    running = controller;
    try {
      const answer = await api.post("/canned-responses/preview", { text: value }, { signal: controller.signal });
      setText(preview, answer.text);
      preview.dataset.state = "ready";
      setFieldError(form, "text", null);
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err instanceof ApiError && err.fields?.text) {
        setFieldError(form, "text", err.fields.text);
        preview.dataset.state = "stale";
      }
    }
  };
  return {
    now: show,
    soon() {
      clearTimeout(timer);
      timer = setTimeout(show, PREVIEW_DELAY_MS);
    },
  };
}

function insert(text, token) {
  const start = text.selectionStart ?? text.value.length;
  const end = text.selectionEnd ?? start;
  text.focus();
  text.setRangeText(token, start, end, "end");
  text.dispatchEvent(new Event("input", { bubbles: true }));
}

if (form) {
  const text = qs("#canned-text");
  const scope = qs("#canned-scope");
  const team = qs("#canned-team");
  const teamField = qs("[data-team-field]", form);
  const preview = previewer(text, qs("#canned-preview"));

  on(scope, "change", () => {
    teamField.hidden = scope.value !== "team";
  });
  on(text, "input", () => preview.soon());
  on(form, "click", "[data-insert]", (event, button) => insert(text, button.dataset.insert));
  preview.now();

  submitting(form, () => {
    const body = {
      scope: scope.value,
      team_id: scope.value === "team" ? team.value || null : null,
      short_code: qs("#canned-short_code").value,
      title: qs("#canned-title").value,
      text: text.value,
    };
    const id = form.dataset.id;
    return id ? api.patch(`/canned-responses/${id}`, body) : api.post("/canned-responses", body);
  });
}
