// The builder's live preview: the form as a visitor sees it, drawn from the definition
// the admin is editing. It follows what the embed script (connectors/webform/static/
// embed.js) builds, with the same classes, so the two look alike. Everything here is
// admin-written text, set with textContent and attributes only (dom.js), never as markup.
import { el, replaceChildren } from "../dom.js";

// embed.js shows these words to visitors as they are (it is not translated), so the
// preview shows them the same way.
const REQUIRED = "(required)";
const CHOOSE = "Choose\u2026";
const INPUT_TYPES = { email: "email", phone: "tel", text: "text" };

function control(field, id) {
  const common = { id, "aria-required": field.required ? "true" : null, placeholder: field.placeholder || null };
  switch (field.type) {
    case "textarea":
      return el("textarea", { ...common, dir: "auto", rows: 3 });
    case "select":
      return el(
        "select",
        common,
        el("option", { value: "" }, CHOOSE),
        ...(field.options ?? []).map((option) => el("option", { value: option.value }, option.label)),
      );
    case "checkbox":
      return el("input", { ...common, type: "checkbox" });
    case "file":
      return el("input", { ...common, type: "file", accept: (field.accept ?? []).join(",") || null });
    default:
      return el("input", { ...common, type: INPUT_TYPES[field.type] ?? "text", dir: "auto" });
  }
}

function fieldNode(field, index) {
  const id = `fb-pv-${index}`;
  const label = el("label", { for: id }, field.label);
  if (field.required) label.append(" ", el("span", { class: "sb-required" }, REQUIRED));
  const input = control(field, id);
  const help = field.help_text ? el("p", { class: "sb-help", dir: "auto" }, field.help_text) : null;
  const wrapper = el("div", { class: `sb-field sb-field--${field.type}` });
  if (field.type === "checkbox") wrapper.append(input, label);
  else wrapper.append(label, ...(help ? [help] : []), input);
  if (field.type === "checkbox" && help) wrapper.append(help);
  return wrapper;
}

/** Draw `definition` (name, description, fields, submit_label) into `root`. */
export function renderPreview(root, definition) {
  const form = el(
    "form",
    // The visitor's page, not the admin's, sets the direction: follow the form's own text.
    { class: "sb-form", lang: definition.language || null, dir: "auto", "aria-label": definition.name || null },
    definition.name ? el("h3", { class: "sb-title", dir: "auto" }, definition.name) : null,
    definition.description ? el("p", { class: "sb-description", dir: "auto" }, definition.description) : null,
    ...definition.fields.map(fieldNode),
    // A preview never sends anything: the button is a plain button.
    el("button", { type: "button", class: "sb-button", dir: "auto" }, definition.submit_label || "\u00a0"),
  );
  form.addEventListener("submit", (event) => event.preventDefault());
  replaceChildren(root, form);
}
