// The outgoing webhooks page (/settings/webhooks): the subscriptions with their last
// delivery, switched on and off, created and edited (URL, description, event kinds from
// GET /webhooks/event-types), the signing secret shown once after creating or rotating,
// and one webhook's delivery log (refreshed while it is open) with "Redeliver" and
// "View": what one delivery posted (its headers that carry no secret, the JSON body as
// text, never as markup: it holds what customers wrote) and the last answer or error.
import { api, ApiError } from "../api.js";
import { el, on, pageData, qs, qsa, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { absoluteTime, relativeTime } from "../time.js";
import {
  clearErrors,
  clone,
  confirmDialog,
  failure,
  focusFirstError,
  listAll,
  markError,
  notify,
  text,
} from "./routing_form.js";

const ALL = "*";
const SHOWN_EVENTS = 3; // event kinds named in a row before "+N"
const POLL_MS = 3000; // the open delivery log is read again this often

const page = pageData("webhook-page");
const notice = qs("#webhooks-notice");
const body = qs("#webhooks tbody");
const form = qs("#webhook-form");
const editor = qs("#webhook-editor");
let webhooks = [];
let editing = null; // the webhook being edited, null for a new one
let returnFocus = null;

// --- the list ------------------------------------------------------------------------

const STATUS = {
  delivered: ["badge--good", () => t("Delivered")],
  failed: ["badge--bad", () => t("Failed")],
  queued: ["badge--warn", () => t("Queued")],
};

function statusBadge(node, delivery) {
  const retrying = delivery.status === "queued" && delivery.attempts > 0;
  const [style, label] = STATUS[delivery.status] ?? ["", () => delivery.status];
  node.className = `badge ${style}`;
  setText(node, retrying ? t("Will retry") : label());
  return node;
}

function timeNode(node, value) {
  node.dateTime = value;
  node.title = absoluteTime(value);
  setText(node, relativeTime(value));
  return node;
}

function eventsCell(cell, types) {
  if (types.includes(ALL)) {
    replaceChildren(cell, el("span", { class: "badge badge--accent" }, cell.dataset.all));
    return;
  }
  const shown = types.slice(0, SHOWN_EVENTS).map((name) => el("code", { title: eventText(name) }, name));
  const rest = types.length - shown.length;
  if (rest > 0) shown.push(el("span", { class: "badge", title: types.slice(SHOWN_EVENTS).join("\n") }, `+${rest}`));
  replaceChildren(cell, ...shown);
}

function webhookRow(webhook) {
  const row = clone("webhook-row");
  row.dataset.id = webhook.id;
  setText(qs("[data-cell=url]", row), webhook.url);
  setText(qs("[data-cell=description]", row), webhook.description ?? "");
  const inactive = qs("[data-cell=inactive]", row);
  inactive.hidden = webhook.active || !webhook.inactive_reason;
  setText(inactive, webhook.inactive_reason ? t("Switched off: {reason}", { reason: webhook.inactive_reason }) : "");
  eventsCell(qs("[data-cell=events]", row), webhook.event_types);
  const toggle = qs("[data-action=toggle-webhook]", row);
  toggle.checked = webhook.active;
  return row;
}

/** The newest delivery's state, from the list itself (GET /webhooks names it). */
function showLast(webhook) {
  const cell = qs(`tr[data-id="${webhook.id}"] [data-cell=last]`, body);
  const delivery = webhook.last_delivery;
  if (!cell || !delivery) return;
  replaceChildren(
    cell,
    statusBadge(el("span"), delivery),
    " ",
    timeNode(el("time", { class: "muted" }), delivery.last_attempt_at ?? delivery.created_at),
  );
}

async function loadWebhooks() {
  webhooks = await listAll("/webhooks");
  replaceChildren(body, ...webhooks.map(webhookRow));
  qs("#webhooks").hidden = webhooks.length === 0;
  qs("#webhooks-empty").hidden = webhooks.length > 0;
  webhooks.forEach(showLast);
}

function webhookOf(node) {
  const id = node.closest("tr").dataset.id;
  return webhooks.find((w) => w.id === id);
}

async function toggle(box) {
  const webhook = webhookOf(box);
  try {
    Object.assign(webhook, await api.patch(`/webhooks/${webhook.id}`, { active: box.checked }));
    notify(notice, box.checked ? t("The webhook is on.") : t("The webhook is off."));
  } catch (err) {
    box.checked = !box.checked;
    notify(notice, failure(err), false);
  }
}

async function remove(button) {
  const webhook = webhookOf(button);
  if (!(await confirmDialog(t("Delete this webhook?"), webhook.url))) {
    button.focus();
    return;
  }
  try {
    await api.delete(`/webhooks/${webhook.id}`);
    if (log.webhook?.id === webhook.id) log.close(false);
    await loadWebhooks();
    notify(notice, t("The webhook was deleted."));
    qs("[data-action=new-webhook]").focus();
  } catch (err) {
    notify(notice, failure(err), false);
  }
}

// --- the secret, shown once ----------------------------------------------------------

const secretPanel = qs("#secret-panel");

function showSecret(secret) {
  setText(qs("#secret-value"), secret);
  secretPanel.hidden = false;
  secretPanel.scrollIntoView({ block: "start" });
  qs("[data-action=copy-secret]", secretPanel).focus();
}

async function copySecret() {
  const value = qs("#secret-value");
  try {
    await navigator.clipboard.writeText(value.textContent);
    notify(notice, text("copied"));
  } catch {
    // No clipboard (permission refused): select it, for Ctrl+C.
    window.getSelection().selectAllChildren(value);
  }
}

function hideSecret() {
  setText(qs("#secret-value"), "");
  secretPanel.hidden = true;
  qs("[data-action=new-webhook]").focus();
}

async function rotate(button) {
  const webhook = webhookOf(button);
  const dialog = qs("#rotate-dialog");
  setText(qs("[data-rotate-url]", dialog), webhook.url);
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "confirm") {
    button.focus();
    return;
  }
  const seconds = Number(qs("#rotate-grace", dialog).value);
  try {
    const answer = await api.post(`/webhooks/${webhook.id}/rotate-secret`, {
      previous_secret_valid_seconds: seconds,
    });
    showSecret(answer.secret);
  } catch (err) {
    notify(notice, failure(err), false);
  }
}

// --- the editor ----------------------------------------------------------------------

function eventText(name) {
  return page.event_text[name] ?? "";
}

function buildEventChoices(kinds) {
  const groups = page.groups.map((group) => ({ ...group, kinds: [] }));
  const other = groups[groups.length - 1];
  for (const kind of kinds) {
    const prefix = kind.name.split(".")[0];
    (groups.find((g) => g.prefixes.includes(prefix)) ?? other).kinds.push(kind);
  }
  const sets = groups
    .filter((group) => group.kinds.length)
    .map((group) =>
      el(
        "fieldset",
        { class: "event-group" },
        el("legend", {}, group.title),
        ...group.kinds.map((kind) =>
          el(
            "label",
            { class: "event-choice" },
            el("input", { type: "checkbox", name: "event", value: kind.name }),
            el("code", { dir: "ltr" }, kind.name),
            el("span", { class: "event-choice__text" }, eventText(kind.name) || kind.description),
          ),
        ),
      ),
    );
  replaceChildren(qs("#event-groups"), ...sets);
}

function eventBoxes() {
  return qsa("#event-groups input[name=event]");
}

function showAllEvents() {
  const all = form.elements.all_events.checked;
  for (const box of eventBoxes()) box.disabled = all;
  qs("#event-groups").classList.toggle("event-groups--off", all);
}

function openEditor(webhook, from) {
  editing = webhook;
  returnFocus = from;
  clearErrors(form);
  setText(qs("#webhook-form-error"), "");
  const title = qs("#webhook-editor-title");
  setText(title, webhook ? title.dataset.titleEdit : title.dataset.titleNew);
  form.elements.url.value = webhook?.url ?? "";
  form.elements.description.value = webhook?.description ?? "";
  form.elements.active.checked = webhook?.active ?? true;
  const types = new Set(webhook?.event_types ?? []);
  form.elements.all_events.checked = types.has(ALL);
  for (const box of eventBoxes()) box.checked = types.has(box.value);
  showAllEvents();
  editor.hidden = false;
  editor.scrollIntoView({ block: "start" });
  form.elements.url.focus();
}

function closeEditor() {
  editor.hidden = true;
  editing = null;
  returnFocus?.focus();
}

function readForm() {
  const types = form.elements.all_events.checked
    ? [ALL]
    : eventBoxes().filter((box) => box.checked).map((box) => box.value);
  return {
    url: form.elements.url.value.trim(),
    description: form.elements.description.value.trim() || null,
    active: form.elements.active.checked,
    event_types: types,
  };
}

async function save() {
  clearErrors(form);
  const error = qs("#webhook-form-error");
  setText(error, "");
  const values = readForm();
  if (!values.url) markError(form, "url", t("Enter the URL to post to."));
  if (!values.event_types.length) markError(form, "event_types", t("Choose at least one event."));
  if (!values.url || !values.event_types.length) {
    notify(error, text("check_fields"), false);
    focusFirstError(form);
    return;
  }
  const submit = qs("button[type=submit]", form);
  submit.disabled = true;
  try {
    if (editing) {
      await api.patch(`/webhooks/${editing.id}`, values);
      closeEditor();
      notify(notice, text("saved"));
    } else {
      const created = await api.post("/webhooks", values);
      editor.hidden = true;
      editing = null;
      showSecret(created.secret);
    }
    await loadWebhooks();
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) {
      const left = Object.entries(err.fields).filter(([name, message]) => !markError(form, name, message));
      const rest = left.map(([name, message]) => `${name}: ${message}`).join("; ");
      notify(error, rest ? `${text("check_fields")} ${rest}` : text("check_fields"), false);
      focusFirstError(form);
    } else {
      notify(error, failure(err), false);
    }
  } finally {
    submit.disabled = false;
  }
}

// --- the delivery log ----------------------------------------------------------------

/** One delivery in #delivery-dialog; its texts only ever go in as text. */
class DeliveryView {
  constructor(dialog) {
    this.dialog = dialog;
    this.id = null; // the delivery shown while the dialog is open
    dialog.addEventListener("close", () => {
      // Back to its "View": the log may have been redrawn meanwhile (a new button).
      const button = qs(`#deliveries tr[data-id="${this.id}"] [data-action=view-delivery]`);
      this.id = null;
      if (button && document.activeElement !== button) button.focus();
    });
  }

  detail(name) {
    return qs(`[data-detail="${name}"]`, this.dialog);
  }

  open(delivery) {
    this.fill(delivery);
    this.dialog.returnValue = "";
    this.dialog.showModal();
  }

  /** Redraw with a fresher copy of the delivery shown (the log was read again). */
  update(delivery) {
    if (this.dialog.open && delivery.id === this.id) this.fill(delivery);
  }

  fill(delivery) {
    this.id = delivery.id;
    setText(this.detail("event"), delivery.event);
    this.detail("event").title = eventText(delivery.event);
    statusBadge(this.detail("status"), delivery);
    setText(this.detail("attempts"), delivery.attempts);
    const last = this.detail("last-attempt");
    last.hidden = !delivery.last_attempt_at;
    this.detail("never").hidden = Boolean(delivery.last_attempt_at);
    if (delivery.last_attempt_at) {
      last.dateTime = delivery.last_attempt_at;
      setText(last, absoluteTime(delivery.last_attempt_at));
    }
    setText(this.detail("code"), delivery.last_status_code ?? "—");
    setText(this.detail("error"), delivery.last_error ?? "—");
    setText(this.detail("event-header"), delivery.event);
    setText(this.detail("id"), delivery.id);
    // {} once the contact's personal data was erased: nothing was kept to show.
    const erased = Object.keys(delivery.payload ?? {}).length === 0;
    const body = this.detail("body");
    body.hidden = erased;
    this.detail("erased").hidden = !erased;
    // Text, never markup; written again only when it changed (keeps the reader's scroll).
    const json = erased ? "" : JSON.stringify(delivery.payload, null, 2);
    if (body.textContent !== json) setText(body, json);
  }
}

class DeliveryLog {
  constructor(panel, view) {
    this.panel = panel;
    this.view = view;
    this.body = qs("tbody", panel);
    this.more = qs(".more", panel);
    this.webhook = null;
    this.cursor = null;
    this.pages = 0;
    this.timer = null;
    this.deliveries = new Map(); // id -> the delivery as last read, for "View"
    on(panel, "click", "[data-action=refresh-deliveries]", () => this.load());
    on(panel, "click", "[data-action=older-deliveries]", () => this.load(this.cursor));
    on(panel, "click", "[data-action=close-deliveries]", () => this.close());
    on(panel, "click", "[data-action=redeliver]", (_e, button) => this.redeliver(button));
    on(panel, "click", "[data-action=view-delivery]", (_e, button) => this.show(button));
  }

  show(button) {
    const delivery = this.deliveries.get(button.closest("tr").dataset.id);
    if (delivery) this.view.open(delivery);
  }

  open(webhook) {
    this.webhook = webhook;
    setText(qs("#deliveries-url", this.panel), webhook.url);
    this.deliveries.clear();
    replaceChildren(this.body);
    this.panel.hidden = false;
    this.panel.scrollIntoView({ block: "start" });
    this.panel.focus();
    this.load();
  }

  close(focusBack = true) {
    const id = this.webhook?.id;
    this.webhook = null;
    clearTimeout(this.timer);
    this.panel.hidden = true;
    if (focusBack && id) qs(`tr[data-id="${id}"] [data-action=show-deliveries]`, body)?.focus();
  }

  /** The newest page (no cursor), or the page after `cursor` added below. */
  async load(cursor = null) {
    const webhook = this.webhook;
    if (!webhook) return;
    clearTimeout(this.timer);
    try {
      const answer = await api.get(`/webhooks/${webhook.id}/deliveries`, { cursor });
      if (this.webhook !== webhook) return;
      if (!cursor) this.deliveries.clear();
      const rows = answer.items.map((delivery) => this.row(delivery));
      if (cursor) this.body.append(...rows);
      else replaceChildren(this.body, ...rows);
      this.pages = cursor ? this.pages + 1 : 1;
      this.cursor = answer.next_cursor;
      this.more.hidden = !this.cursor;
      const empty = this.body.children.length === 0;
      qs("#deliveries", this.panel).hidden = empty;
      qs("#deliveries-empty", this.panel).hidden = !empty;
      // The newest page starts with the newest delivery: the list's cell follows it.
      if (!cursor) showLast({ ...webhook, last_delivery: answer.items[0] ?? null });
    } catch (err) {
      notify(notice, failure(err), false);
    }
    // While it is open, new deliveries and retries show up by themselves (the newest
    // page only: reading it again would drop the older pages shown).
    if (this.webhook === webhook && this.pages === 1) {
      this.timer = setTimeout(() => (document.hidden ? this.schedule() : this.load()), POLL_MS);
    }
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), POLL_MS);
  }

  row(delivery) {
    this.deliveries.set(delivery.id, delivery);
    this.view.update(delivery);
    const row = clone("delivery-row");
    row.dataset.id = delivery.id;
    timeNode(qs("[data-cell=time]", row), delivery.created_at);
    setText(qs("[data-cell=event]", row), delivery.event);
    qs("[data-cell=event]", row).title = eventText(delivery.event);
    statusBadge(qs("[data-cell=status]", row), delivery);
    setText(qs("[data-cell=code]", row), delivery.last_status_code ?? "—");
    setText(qs("[data-cell=attempts]", row), delivery.attempts);
    setText(qs("[data-cell=error]", row), delivery.last_error ?? "");
    return row;
  }

  async redeliver(button) {
    const row = button.closest("tr");
    button.disabled = true;
    try {
      const delivery = await api.post(`/webhooks/deliveries/${row.dataset.id}/redeliver`);
      const fresh = this.row(delivery);
      row.replaceWith(fresh);
      qs("[data-action=redeliver]", fresh).focus();
      notify(notice, t("Queued again: it is posted in a moment."));
      if (this.pages === 1) this.schedule();
    } catch (err) {
      button.disabled = false;
      notify(notice, failure(err), false);
    }
  }
}

const log = new DeliveryLog(qs("#deliveries-panel"), new DeliveryView(qs("#delivery-dialog")));

// --- wiring --------------------------------------------------------------------------

on(document, "click", "[data-action=new-webhook]", (_e, button) => openEditor(null, button));
on(body, "click", "[data-action=edit-webhook]", (_e, button) => openEditor(webhookOf(button), button));
on(body, "click", "[data-action=show-deliveries]", (_e, button) => log.open(webhookOf(button)));
on(body, "click", "[data-action=rotate-secret]", (_e, button) => rotate(button));
on(body, "click", "[data-action=delete-webhook]", (_e, button) => remove(button));
on(body, "change", "[data-action=toggle-webhook]", (_e, box) => toggle(box));
on(form, "change", "input[name=all_events]", showAllEvents);
on(form, "click", "[data-action=cancel-webhook]", closeEditor);
on(form, "keydown", (event) => {
  if (event.key === "Escape") closeEditor();
});
on(form, "submit", (event) => {
  event.preventDefault();
  save();
});
on(secretPanel, "click", "[data-action=copy-secret]", copySecret);
on(secretPanel, "click", "[data-action=hide-secret]", hideSecret);

async function start() {
  try {
    const kinds = await api.get("/webhooks/event-types");
    buildEventChoices(kinds.items);
    await loadWebhooks();
  } catch (err) {
    notify(notice, failure(err), false);
  }
}

start();
