// The contact list (templates/admin/contacts/list.html): a saved segment or the filter
// being built, its live count (POST /segments/preview), the matching contacts
// (POST /segments/preview/contacts, paged), saving, updating, renaming and deleting
// segments, and the CSV export of the segment or the filter. The chosen segment is kept
// in ?segment=.
import { api, ApiError } from "../api.js";
import { el, icon, on, qs, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";
import { initials } from "../inbox/row.js";
import { fillTime } from "../time.js";
import {
  contactName,
  data,
  download,
  filledIn,
  identityNode,
  showNotice,
  stageName,
  tagChip,
  userName,
} from "./contacts_common.js";
import { countConditions, readFilters, sameFilters, wireConditions, writeFilters } from "./contacts_filters.js";

const root = qs("[data-contacts]");
const PAGE = 50;
const SHOWN_IDENTITIES = 2;
const SHOWN_TAGS = 3;

const form = qs("[data-filters]");
const picker = qs("[data-segment]");
const rows = qs("[data-rows]");
const table = qs("[data-table]");
const inRoot = (selector) => (root ? qs(selector, root) : null);
const errorNotice = inRoot("[data-error]");
// Those who may save segments may rename and delete them (the API: admins and managers).
const actions = inRoot("[data-segment-actions]");
const renameForm = inRoot("[data-rename-form]");
const deleteDialog = inRoot("[data-delete-segment-dialog]");
const segments = new Map();
let cursor = null;
let generation = 0; // answers to an older filter are dropped
let pending = null;
let deleting = null; // the id of the segment the delete dialog asks about

function current() {
  return segments.get(picker.value) ?? null;
}

function contactRow(contact) {
  const name = contactName(contact);
  const link = el(
    "a",
    { class: "contact-link", href: `/contacts/${contact.id}` },
    el("span", { class: "avatar", "aria-hidden": "true" }, initials(name) || icon("user")),
    el("bdi", { class: "contact-link__name", dir: "auto" }, name),
  );
  const identities = contact.identities.slice(0, SHOWN_IDENTITIES).map((identity) => identityNode(identity, "li"));
  const moreIdentities = contact.identities.length - SHOWN_IDENTITIES;
  const tags = contact.tags.slice(0, SHOWN_TAGS).map((tag) => tagChip(tag));
  const moreTags = contact.tags.length - SHOWN_TAGS;
  return el(
    "tr",
    { dataset: { contactId: contact.id, erased: String(contact.erased) } },
    el(
      "td",
      { class: "contacts-table__name" },
      link,
      contact.erased ? el("span", { class: "badge badge--bad" }, t("Personal data erased")) : null,
    ),
    el(
      "td",
      {},
      el("ul", { class: "identity-list", role: "list" }, ...identities, moreIdentities > 0 ? el("li", { class: "muted" }, `+${moreIdentities}`) : null),
    ),
    el("td", {}, el("span", { class: "badge badge--accent", dataset: { stage: contact.lifecycle_stage } }, stageName(contact.lifecycle_stage))),
    el("td", { class: "contacts-table__owner" }, contact.owner_id ? userName(contact.owner_id) : el("span", { class: "muted" }, t("Nobody"))),
    el("td", {}, el("ul", { class: "tag-list", role: "list" }, ...tags, moreTags > 0 ? el("li", { class: "tag-chip tag-chip--more" }, `+${moreTags}`) : null)),
    el("td", { class: "num" }, fillTime(el("time", { class: "muted" }), contact.last_activity_at)),
  );
}

function showSegmentState(filters) {
  const segment = current();
  const changed = segment ? !sameFilters(segment.filters, filters) : false;
  const update = qs("[data-action=update-segment]", root);
  if (update) {
    update.hidden = !segment || !changed;
    if (segment) setText(update, t("Update “{name}”", { name: segment.name }));
  }
  if (actions) actions.hidden = !segment || !renameForm.hidden;
  const badge = qs("[data-filter-count]", root);
  const count = countConditions(filters);
  badge.hidden = count === 0;
  setText(badge, String(count));
}

async function refresh() {
  const filters = readFilters(form);
  showSegmentState(filters);
  const mine = ++generation;
  table.setAttribute("aria-busy", "true");
  showNotice(qs("[data-filter-error]", root), null);
  try {
    const [counted, page] = await Promise.all([
      api.post("/segments/preview", { filters }),
      api.post("/segments/preview/contacts", { filters }, { query: { limit: PAGE } }),
    ]);
    if (mine !== generation) return;
    setText(qs("[data-count]", root), new Intl.NumberFormat(document.documentElement.lang).format(counted.count));
    replaceChildren(rows, ...page.items.map(contactRow));
    showPage(page);
  } catch (error) {
    if (mine !== generation) return;
    setText(qs("[data-count]", root), "—");
    showNotice(qs("[data-filter-error]", root), error);
  } finally {
    if (mine === generation) table.setAttribute("aria-busy", "false");
  }
}

function showPage(page) {
  cursor = page.next_cursor;
  qs("[data-more-box]", root).hidden = !cursor;
  qs("[data-empty]", root).hidden = rows.children.length > 0;
}

async function more(button) {
  const mine = generation;
  button.disabled = true;
  try {
    const page = await api.post("/segments/preview/contacts", { filters: readFilters(form) }, { query: { limit: PAGE, cursor } });
    if (mine !== generation) return;
    rows.append(...page.items.map(contactRow));
    showPage(page);
  } catch (error) {
    showNotice(errorNotice, error);
  } finally {
    button.disabled = false;
  }
}

function soon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, 250);
}

async function loadSegments(selected) {
  const page = await api.get("/segments", { limit: 200 });
  segments.clear();
  for (const segment of page.items) segments.set(segment.id, segment);
  const first = picker.options[0];
  replaceChildren(
    picker,
    first,
    ...page.items.map((segment) => el("option", { value: segment.id, dir: "auto" }, segment.name)),
  );
  picker.value = segments.has(selected) ? selected : "";
}

function remember() {
  const url = new URL(window.location.href);
  if (picker.value) url.searchParams.set("segment", picker.value);
  else url.searchParams.delete("segment");
  window.history.replaceState(null, "", url);
}

function pick() {
  closeRename(false);
  const segment = current();
  writeFilters(form, segment?.filters ?? {});
  remember();
  refresh();
}

function said(text) {
  setText(qs("[data-saved]", root), text);
}

async function save(event) {
  event.preventDefault();
  const input = qs("#segment-name");
  said("");
  const name = filledIn(input);
  if (name === null) return;
  try {
    const segment = await api.post("/segments", { name, filters: readFilters(form) });
    await loadSegments(segment.id);
    input.value = "";
    remember();
    showSegmentState(readFilters(form));
    said(t("Segment “{name}” saved.", { name: segment.name }));
  } catch (error) {
    showNotice(qs("[data-filter-error]", root), error);
  }
}

async function update() {
  const segment = current();
  if (!segment) return;
  said("");
  try {
    const changed = await api.patch(`/segments/${segment.id}`, { filters: readFilters(form) });
    segments.set(changed.id, changed);
    showSegmentState(readFilters(form));
    said(t("Segment “{name}” saved.", { name: changed.name }));
  } catch (error) {
    showNotice(qs("[data-filter-error]", root), error);
  }
}

// --- renaming and deleting the picked segment ------------------------------------------

function optionOf(segmentId) {
  return [...picker.options].find((option) => option.value === segmentId) ?? null;
}

function openRename() {
  const segment = current();
  if (!segment) return;
  const input = renameForm.elements.namedItem("name");
  input.value = segment.name;
  input.removeAttribute("aria-invalid");
  renameForm.hidden = false;
  actions.hidden = true;
  input.focus();
  input.select();
}

/** Back to the buttons; `focus`: onto Rename (or the picker when the segment is gone). */
function closeRename(focus = true) {
  if (!renameForm || renameForm.hidden) return;
  renameForm.hidden = true;
  actions.hidden = !current();
  if (focus) (current() ? qs("[data-action=rename-segment]", actions) : picker).focus();
}

async function rename(event) {
  event.preventDefault();
  const segment = current();
  if (!segment) return closeRename();
  const input = renameForm.elements.namedItem("name");
  const name = filledIn(input);
  if (name === null) return;
  if (name === segment.name) return closeRename();
  said("");
  showNotice(errorNotice, null);
  const button = qs("[type=submit]", renameForm);
  button.disabled = true;
  try {
    const changed = await api.patch(`/segments/${segment.id}`, { name });
    segments.set(changed.id, changed);
    const option = optionOf(changed.id);
    if (option) setText(option, changed.name);
    closeRename();
    showSegmentState(readFilters(form));
    said(t("Segment renamed to “{name}”.", { name: changed.name }));
  } catch (error) {
    showNotice(errorNotice, error);
    input.focus();
  } finally {
    button.disabled = false;
  }
}

function askDelete() {
  const segment = current();
  if (!segment) return;
  setText(qs("[data-delete-segment-name]", deleteDialog), segment.name);
  deleting = segment.id;
  deleteDialog.returnValue = "";
  deleteDialog.showModal();
}

async function confirmedDelete() {
  const segmentId = deleting;
  deleting = null;
  const opener = qs("[data-action=delete-segment]", actions);
  if (deleteDialog.returnValue !== "delete" || !segmentId) {
    opener.focus();
    return;
  }
  const name = segments.get(segmentId)?.name ?? "";
  said("");
  showNotice(errorNotice, null);
  opener.disabled = true;
  try {
    await api.delete(`/segments/${segmentId}`);
  } catch (error) {
    // Deleted by someone else meanwhile: gone all the same.
    if (!(error instanceof ApiError && error.notFound)) {
      showNotice(errorNotice, error);
      opener.focus();
      return;
    }
  } finally {
    opener.disabled = false;
  }
  segments.delete(segmentId);
  optionOf(segmentId)?.remove();
  // Back to every contact, no segment.
  picker.value = "";
  writeFilters(form, {});
  remember();
  refresh();
  said(t("Segment “{name}” deleted.", { name }));
  picker.focus();
}

/** Another person created, renamed or deleted a segment: the picker follows. */
async function segmentsChanged() {
  await loadSegments(picker.value);
  // The segment being renamed is gone: the focus, if there, goes to the picker.
  if (!current()) closeRename(Boolean(renameForm?.contains(document.activeElement)));
  remember();
  showSegmentState(readFilters(form));
}

async function exportCsv(button) {
  const segment = current();
  const filters = readFilters(form);
  button.disabled = true;
  showNotice(errorNotice, null);
  try {
    // A saved segment exports under its own name; a changed or unsaved filter as it is.
    if (segment && sameFilters(segment.filters, filters)) {
      await download(`/segments/${segment.id}/export.csv`);
    } else {
      await download("/contacts/export.csv", { method: "POST", body: { filters } });
    }
  } catch (error) {
    showNotice(errorNotice, error);
  } finally {
    button.disabled = false;
  }
}

function wireSegmentActions() {
  if (!actions || !renameForm || !deleteDialog) return;
  on(actions, "click", "[data-action=rename-segment]", openRename);
  on(actions, "click", "[data-action=delete-segment]", askDelete);
  on(renameForm, "submit", rename);
  on(renameForm, "click", "[data-action=cancel-rename]", () => closeRename());
  on(renameForm, "keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    closeRename();
  });
  on(deleteDialog, "close", confirmedDelete);
}

async function start() {
  wireConditions(form, soon);
  on(form, "input", soon);
  on(form, "change", soon);
  // The search box sits in the toolbar, outside the form it belongs to: its events do
  // not pass through the form.
  on(qs("#filter-q"), "input", soon);
  on(form, "submit", (event) => event.preventDefault());
  // After the reset has cleared the fields (the event comes before).
  on(form, "reset", () => {
    setTimeout(() => {
      replaceChildren(qs("[data-conditions]", form) ?? el("ol"));
      soon();
    });
  });
  on(picker, "change", pick);
  on(root, "click", "[data-action=more]", (event, button) => more(button));
  on(root, "click", "[data-action=update-segment]", update);
  on(document, "click", "[data-action=export]", (event, button) => exportCsv(button));
  const saveForm = qs("[data-save-form]");
  if (saveForm) on(saveForm, "submit", save);
  wireSegmentActions();
  live.on("resync", soon);
  for (const kind of ["segment.created", "segment.updated", "segment.deleted"]) {
    live.on(kind, () => segmentsChanged().catch(() => {}));
  }

  const wanted = new URLSearchParams(window.location.search).get("segment");
  try {
    await loadSegments(wanted);
  } catch (error) {
    showNotice(errorNotice, error);
  }
  if (current()) writeFilters(form, current().filters);
  refresh();
}

if (root && data.can) start();
