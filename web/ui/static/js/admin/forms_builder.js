// The form builder (templates/admin/forms/builder.html): the definition lives here while
// the admin edits it; every change redraws the preview (forms_preview.js); Save sends
// the whole definition to /api/v1/forms (POST for a new form, then its own page; PATCH
// after), and a refusal's field errors are shown beside the controls they name
// ("fields.2.maps_to" is the third field's "Saves to"). Interface strings come translated
// from the page (#fb-config and the field <template>); admin-written text only ever goes
// in as values and text. "Rotate key" asks in #fb-rotate-dialog, then POSTs
// /forms/{id}/rotate-key and shows the new snippet and page address where the old ones were.
import { api, ApiError } from "../api.js";
import { el, on, pageData, qs, qsa, setText } from "../dom.js";
import { renderPreview } from "./forms_preview.js";

const config = pageData("fb-config");
const saved = pageData("fb-form");
const editor = qs("[data-builder]");
const list = qs("[data-fields]", editor);
const template = qs("#fb-field-template");
const preview = qs("[data-preview]");
const general = qs("[data-general-error]");
const saveStatus = qs("[data-save-status]");
const saveButton = qs("[data-action=save]", editor);
const addType = qs("#fb-add-type");

// The properties of a field the card edits; anything else a field has (help text,
// placeholder, limits) is kept as it came and sent back unchanged.
const CARD_PROPS = new Set(["label", "type", "name", "maps_to", "options", "required"]);
// A new field of these types feeds the contact property, unless another field already does.
const DEFAULT_MAPPING = { email: "email", phone: "phone", textarea: "message" };

let formId = saved?.id ?? null;
let nextUid = 1;
const honeypot = saved?.honeypot_field ?? "website";
/** @type {{uid: number, data: object, nameTouched: boolean}[]} */
let fields = [];

// --- the form-level controls ----------------------------------------------------------

const topControls = () => qsa("[data-prop]", editor).filter((node) => !node.closest("[data-field]"));
const top = (prop) => topControls().find((node) => node.dataset.prop === prop) ?? null;
const successMode = () => qs("[data-success-mode]:checked", editor)?.value ?? "message";

function load(form) {
  top("name").value = form.name ?? "";
  if (form.channel_id) top("channel_id").value = form.channel_id;
  top("description").value = form.description ?? "";
  top("submit_label").value = form.submit_label ?? "";
  top("team_id").value = form.team_id ?? "";
  top("active").checked = form.active ?? true;
  top("success_message").value = form.success_message ?? "";
  top("redirect_url").value = form.redirect_url ?? "";
  top("acknowledgement").checked = Boolean(form.acknowledgement);
  top("allowed_origins").value = (form.allowed_origins ?? []).join("\n");
  const mode = form.redirect_url ? "redirect" : "message";
  for (const radio of qsa("[data-success-mode]", editor)) radio.checked = radio.value === mode;
  for (const field of form.fields ?? []) addField(field, { nameTouched: true });
}

function lines(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean);
}

function fieldBody(data) {
  const body = {
    name: data.name,
    label: data.label,
    type: data.type,
    required: Boolean(data.required),
    maps_to: data.maps_to || null,
    help_text: data.help_text ?? null,
    placeholder: data.placeholder ?? null,
    max_length: data.max_length ?? null,
  };
  if (data.type === "select") body.options = data.options ?? [];
  if (data.type === "file") {
    body.accept = data.accept ?? [];
    body.max_bytes = data.max_bytes ?? null;
  }
  return body;
}

/** The definition as the API takes it (POST /forms, PATCH /forms/{id}). */
function definition() {
  const redirect = successMode() === "redirect";
  const body = {
    name: top("name").value,
    channel_id: top("channel_id").value,
    fields: fields.map((entry) => fieldBody(entry.data)),
    team_id: top("team_id").value || null,
    description: top("description").value.trim() || null,
    submit_label: top("submit_label").value,
    success_message: top("success_message").value,
    redirect_url: redirect ? top("redirect_url").value.trim() || null : null,
    allowed_origins: lines(top("allowed_origins").value),
    acknowledgement: top("acknowledgement").checked,
    active: top("active").checked,
  };
  // Hidden while redirecting: an emptied message keeps the stored (or default) one.
  if (redirect && !body.success_message.trim()) delete body.success_message;
  return body;
}

// --- field cards ----------------------------------------------------------------------

const nodeOf = (uid) => qs(`[data-uid="${uid}"]`, list);
const entryOf = (node) => fields.find((entry) => entry.uid === Number(node.dataset.uid));

function slug(text) {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 48);
}

/** A field name from a label: plain letters, digits and "_", unique in the form. */
function nameFor(label, uid) {
  let base = slug(label);
  if (!/^[a-z]/.test(base)) base = base ? `field_${base}` : "field";
  const taken = new Set(fields.filter((f) => f.uid !== uid).map((f) => f.data.name.toLowerCase()));
  taken.add(honeypot.toLowerCase());
  let name = base;
  for (let n = 2; taken.has(name); n += 1) name = `${base}_${n}`;
  return name;
}

function ensureOption(select, value) {
  if (value && ![...select.options].some((option) => option.value === value)) {
    // A mapping the page does not offer (an attribute since deleted): shown as stored.
    select.append(el("option", { value }, value));
  }
}

function fillCard(node, data) {
  qs("[data-prop=label]", node).value = data.label ?? "";
  qs("[data-prop=type]", node).value = data.type ?? "text";
  qs("[data-prop=name]", node).value = data.name ?? "";
  const mapping = qs("[data-prop=maps_to]", node);
  ensureOption(mapping, data.maps_to);
  mapping.value = data.maps_to ?? "";
  qs("[data-prop=options]", node).value = (data.options ?? []).map((option) => option.label).join("\n");
  qs("[data-prop=required]", node).checked = Boolean(data.required);
}

function addField(data, { nameTouched }) {
  const uid = nextUid;
  nextUid += 1;
  const entry = {
    uid,
    nameTouched,
    data: { type: "text", required: false, maps_to: null, options: [], ...data },
  };
  fields.push(entry);
  const node = template.content.firstElementChild.cloneNode(true);
  node.dataset.uid = String(uid);
  for (const control of qsa("[data-prop]", node)) {
    const id = `fb-field-${uid}-${control.dataset.prop}`;
    control.id = id;
    const label = qs(`[data-label-for="${control.dataset.prop}"]`, node);
    if (label) label.htmlFor = id;
  }
  fillCard(node, entry.data);
  list.append(node);
  return node;
}

function addNewField() {
  const type = addType.value;
  const label = addType.selectedOptions[0]?.textContent.trim() ?? "";
  const used = new Set(fields.map((entry) => entry.data.maps_to).filter(Boolean));
  const mapping = DEFAULT_MAPPING[type];
  const node = addField(
    {
      type,
      label,
      name: nameFor(label, 0),
      maps_to: mapping && !used.has(mapping) ? mapping : null,
    },
    { nameTouched: false },
  );
  refresh();
  const input = qs("[data-prop=label]", node);
  input.focus();
  input.select();
}

function parseOptions(text, previous) {
  const values = new Map((previous ?? []).map((option) => [option.label, option.value]));
  return lines(text).map((label) => ({ value: values.get(label) ?? label, label }));
}

function fits(option, type) {
  const types = option.dataset.types;
  return !types || types.split(" ").includes(type);
}

/** Change one property of a field from its control. */
function edit(node, control) {
  const entry = entryOf(node);
  if (!entry) return;
  const prop = control.dataset.prop;
  const data = entry.data;
  if (prop === "required") data.required = control.checked;
  else if (prop === "options") data.options = parseOptions(control.value, data.options);
  else if (prop === "maps_to") data.maps_to = control.value || null;
  else data[prop] = control.value;
  if (prop === "name") entry.nameTouched = true;
  if (prop === "label" && !entry.nameTouched) {
    data.name = nameFor(control.value, entry.uid);
    qs("[data-prop=name]", node).value = data.name;
  }
  if (prop === "type") {
    // What the API allows only for other types goes, so the field stays valid.
    if (data.type !== "select") data.options = [];
    if (data.type !== "file") {
      delete data.accept;
      delete data.max_bytes;
    }
    const mapping = qs("[data-prop=maps_to]", node);
    const current = [...mapping.options].find((option) => option.value === mapping.value);
    if (current && !fits(current, data.type)) {
      mapping.value = "";
      data.maps_to = null;
    }
  }
}

function move(node, step) {
  const index = fields.findIndex((entry) => entry.uid === Number(node.dataset.uid));
  const target = index + step;
  if (target < 0 || target >= fields.length) return;
  const [entry] = fields.splice(index, 1);
  fields.splice(target, 0, entry);
  const sibling = step < 0 ? node.previousElementSibling : node.nextElementSibling.nextElementSibling;
  list.insertBefore(node, sibling);
  refresh();
  const button = qs(`[data-action=${step < 0 ? "up" : "down"}]`, node);
  (button.disabled ? qs(`[data-action=${step < 0 ? "down" : "up"}]`, node) : button).focus();
}

function remove(node) {
  const index = fields.findIndex((entry) => entry.uid === Number(node.dataset.uid));
  fields.splice(index, 1);
  const next = node.nextElementSibling ?? node.previousElementSibling;
  node.remove();
  refresh();
  (next ? qs("[data-action=remove]", next) : qs("[data-action=add-field]", editor)).focus();
}

// --- drawing --------------------------------------------------------------------------

function refreshCards() {
  const used = new Map(fields.filter((f) => f.data.maps_to).map((f) => [f.data.maps_to, f.uid]));
  fields.forEach((entry, index) => {
    const node = nodeOf(entry.uid);
    setText(qs("[data-number]", node), `${index + 1}.`);
    setText(qs("[data-summary]", node), entry.data.label);
    qs("[data-action=up]", node).disabled = index === 0;
    qs("[data-action=down]", node).disabled = index === fields.length - 1;
    qs("[data-when-type=select]", node).hidden = entry.data.type !== "select";
    for (const option of qs("[data-prop=maps_to]", node).options) {
      if (!option.value) continue;
      const owner = used.get(option.value);
      option.hidden = !fits(option, entry.data.type);
      option.disabled = option.hidden || (owner !== undefined && owner !== entry.uid);
    }
  });
}

function refreshSuccess() {
  const mode = successMode();
  for (const node of qsa("[data-when-success]", editor)) node.hidden = node.dataset.whenSuccess !== mode;
  const url = top("redirect_url").value.trim();
  const redirecting = mode === "redirect" && url !== "";
  const message = qs("[data-preview-success=message]");
  setText(message, top("success_message").value);
  message.hidden = redirecting;
  qs("[data-preview-success=redirect]").hidden = !redirecting;
  setText(qs("[data-preview-redirect]"), url);
}

function refresh() {
  refreshCards();
  refreshSuccess();
  renderPreview(preview, {
    name: top("name").value.trim(),
    description: top("description").value.trim(),
    submit_label: top("submit_label").value.trim(),
    language: saved?.language ?? null,
    fields: fields.map((entry) => entry.data),
  });
}

// --- errors ---------------------------------------------------------------------------

function errorNode(id, message) {
  return el("p", { class: "field__error", id, dataset: { fieldError: "" } }, message);
}

function markControl(control, message) {
  clearControl(control);
  const wrapper = control.closest(".field, .check") ?? control.parentElement;
  const id = `${control.id}-error`;
  const node = errorNode(id, message);
  if (wrapper.classList.contains("check")) wrapper.after(node);
  else control.after(node);
  wrapper.classList.add("field--invalid");
  control.setAttribute("aria-invalid", "true");
  control.setAttribute("aria-describedby", id);
}

function clearControl(control) {
  if (control.getAttribute("aria-invalid") !== "true") return;
  document.getElementById(`${control.id}-error`)?.remove();
  control.closest(".field--invalid")?.classList.remove("field--invalid");
  control.removeAttribute("aria-invalid");
  control.removeAttribute("aria-describedby");
}

function markBlock(node, message) {
  setText(node, node.textContent ? `${node.textContent} ${message}` : message);
  node.hidden = false;
}

function clearErrors() {
  for (const control of qsa("[aria-invalid=true]", editor)) clearControl(control);
  for (const node of qsa("[data-card-error], [data-error-for]", editor)) {
    setText(node, "");
    node.hidden = true;
  }
  setText(general, "");
  setText(saveStatus, "");
}

function showErrors(errors, message) {
  const unplaced = [];
  for (const [path, text] of Object.entries(errors)) {
    const [head, index, prop] = path.split(".");
    if (head === "fields" && /^\d+$/.test(index ?? "")) {
      const entry = fields[Number(index)];
      const node = entry ? nodeOf(entry.uid) : null;
      if (!node) unplaced.push(text);
      else if (CARD_PROPS.has(prop)) markControl(qs(`[data-prop=${prop}]`, node), text);
      else markBlock(qs("[data-card-error]", node), text);
    } else if (head === "fields") {
      markBlock(qs("[data-error-for=fields]", editor), text);
    } else {
      const control = topControls().find((node) => node.dataset.prop === head);
      if (control && !control.closest("[hidden]")) markControl(control, text);
      else unplaced.push(text);
    }
  }
  setText(general, [message, ...unplaced].join(" "));
  const first = qs("[aria-invalid=true]", editor);
  if (first) first.focus();
  else general.focus();
}

// --- saving ---------------------------------------------------------------------------

async function save() {
  clearErrors();
  const body = definition();
  if (successMode() === "redirect" && !body.redirect_url) {
    markControl(top("redirect_url"), config.page_needed);
    setText(general, config.invalid);
    top("redirect_url").focus();
    return;
  }
  saveButton.disabled = true;
  editor.setAttribute("aria-busy", "true");
  try {
    if (formId === null) {
      const created = await api.post("/forms", body);
      formId = created.id;
      window.location.assign(`/settings/forms/${created.id}?created=1`);
      return;
    }
    const changed = await api.patch(`/forms/${formId}`, body);
    setText(qs("[data-form-title]"), changed.name);
    document.title = document.title.replace(/^.*?( · [^·]+)$/, `${changed.name}$1`);
    setText(saveStatus, config.saved);
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) showErrors(err.fields ?? {}, config.invalid);
    else setText(general, config.failed.replace("{reason}", err.message));
  } finally {
    saveButton.disabled = false;
    editor.removeAttribute("aria-busy");
  }
}

// --- copying --------------------------------------------------------------------------

async function copy(button) {
  const source = document.querySelector(button.dataset.copy);
  const text = source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (an insecure origin): copy the selected text the old way.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  const done = qs("span", document.getElementById(button.getAttribute("aria-describedby")));
  done.hidden = false;
  window.setTimeout(() => {
    done.hidden = true;
  }, 3000);
}

// --- a new key ------------------------------------------------------------------------

const rotateDialog = qs("#fb-rotate-dialog");
const rotateStatus = qs("[data-rotate-status]");
let rotating = false;

/** A form's public addresses, wherever the page shows them (all carry its key). */
function showUrls(form) {
  setText(qs("[data-snippet]"), form.urls.snippet);
  const link = qs("#fb-page-url");
  link.href = form.urls.page;
  setText(link, form.urls.page);
  for (const done of qsa("[data-copied] span")) done.hidden = true;
  if (saved) Object.assign(saved, { key: form.key, urls: form.urls, updated_at: form.updated_at });
}

function askRotate() {
  if (rotating) return;
  rotateDialog.returnValue = "";
  rotateDialog.showModal();
}

async function rotateKey() {
  if (rotateDialog.returnValue !== "rotate" || rotating) return;
  rotating = true;
  const panel = rotateStatus.closest(".panel");
  panel.setAttribute("aria-busy", "true");
  setText(general, "");
  setText(rotateStatus, "");
  try {
    showUrls(await api.post(`/forms/${formId}/rotate-key`));
    setText(rotateStatus, config.rotated);
  } catch (err) {
    setText(general, config.failed.replace("{reason}", err.message));
    general.focus();
  } finally {
    rotating = false;
    panel.removeAttribute("aria-busy");
  }
}

// --- wiring ---------------------------------------------------------------------------

if (editor) {
  // The "created" notice is for this visit: a reload should not announce it again.
  if (new URLSearchParams(window.location.search).has("created")) {
    window.history.replaceState(null, "", window.location.pathname);
  }
  load(saved ?? { ...config.new_form, fields: config.new_fields, active: true });
  refresh();
  // "input" fires for selects and checkboxes too, so one listener follows every control.
  on(list, "input", "[data-prop]", (event, control) => {
    edit(control.closest("[data-field]"), control);
    clearControl(control);
    setText(saveStatus, "");
    refresh();
  });
  on(list, "click", "[data-action]", (event, button) => {
    const node = button.closest("[data-field]");
    if (button.dataset.action === "up") move(node, -1);
    else if (button.dataset.action === "down") move(node, 1);
    else if (button.dataset.action === "remove") remove(node);
  });
  on(editor, "input", (event) => {
    if (event.target.closest("[data-field]")) return;
    if (event.target.matches?.("[data-prop]")) clearControl(event.target);
    setText(saveStatus, "");
    refresh();
  });
  on(editor, "change", "[data-success-mode]", () => refresh());
  on(editor, "click", "[data-action=add-field]", () => addNewField());
  on(editor, "submit", (event) => {
    event.preventDefault();
    save();
  });
  on(document, "click", "[data-copy]", (event, button) => copy(button));
  if (rotateDialog && formId !== null) {
    on(document, "click", "[data-action=rotate-key]", () => askRotate());
    rotateDialog.addEventListener("close", () => rotateKey());
  }
}
