// The queue of merge suggestions (templates/admin/pipeline/merge.html): oldest first,
// each with its two contacts side by side. Merge (after a confirmation, keeping the
// contact chosen) or dismiss; the API decides who may.
import { api } from "../api.js";
import { append, on, qs, qsa, setText } from "../dom.js";
import { t } from "../i18n.js";
import { contactName, mergeItem } from "./merge_item.js";
import { failure } from "./pipeline_format.js";

const PAGE = 10;
const list = qs(".merge-list");
const empty = qs("[data-empty]");
const more = qs("[data-action=more]");
const notice = qs("#merge-notice");
const dialog = qs("#merge-dialog");
let cursor = null;
const contacts = new Map(); // id → GET /contacts/{id}, or null when it cannot be read

function say(text, { bad = false } = {}) {
  notice.classList.toggle("notice--bad", bad);
  notice.classList.toggle("notice--good", !bad);
  notice.setAttribute("role", bad ? "alert" : "status");
  setText(notice, text);
}

function refresh() {
  empty.hidden = list.children.length > 0 || list.getAttribute("aria-busy") === "true";
  more.hidden = cursor === null;
}

async function fetchContacts(ids) {
  const wanted = [...new Set(ids)].filter((id) => !contacts.has(id));
  await Promise.all(
    wanted.map(async (id) => {
      try {
        contacts.set(id, await api.get(`/contacts/${id}`));
      } catch {
        contacts.set(id, null); // shown by name alone, from the suggestion
      }
    }),
  );
}

async function loadPage({ restart = false } = {}) {
  list.setAttribute("aria-busy", "true");
  list.inert = true; // nothing to click on that a reload is about to replace
  more.disabled = true;
  try {
    const page = await api.get("/merge-suggestions", { limit: PAGE, cursor: restart ? null : cursor });
    await fetchContacts(page.items.flatMap((s) => [s.contact.id, s.other_contact.id]));
    if (restart) list.replaceChildren();
    for (const suggestion of page.items) {
      if (!qs(`.merge-item[data-id="${suggestion.id}"]`, list)) append(list, mergeItem(suggestion, contacts));
    }
    cursor = page.next_cursor;
  } catch (error) {
    say(t("The suggestions could not be loaded: {reason}", { reason: failure(error) }), { bad: true });
  } finally {
    list.setAttribute("aria-busy", "false");
    list.inert = false;
    more.disabled = false;
    refresh();
  }
}

function sides(item) {
  const [first, second] = qsa(".merge-side", item);
  const name = (side) => qs('[data-field="name"]', side).textContent;
  const kept = qs('[data-field="keep"]:checked', item)?.closest(".merge-side") ?? first;
  const merged = kept === first ? second : first;
  return { kept, merged, keptName: name(kept), mergedName: name(merged) };
}

function confirmMerge(keptName, mergedName) {
  setText(qs('[data-field="summary"]', dialog), t("{merged} will be merged into {kept}.", { merged: mergedName, kept: keptName }));
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "merge"), { once: true });
  });
}

function removeItem(item) {
  const next = item.nextElementSibling ?? item.previousElementSibling;
  item.remove();
  // Keep the keyboard in the queue: on the next suggestion's first action.
  if (next) qs("[data-action=dismiss]", next)?.focus();
  refresh();
}

// One change at a time, in order: a dismissal clicked during a reload waits for it.
let queue = Promise.resolve();
function serially(task) {
  queue = queue.then(task, task);
  return queue;
}

const itemOf = (id) => qs(`.merge-item[data-id="${id}"]`, list);

async function merge(id, button) {
  const { kept, keptName, merged, mergedName } = sides(itemOf(id));
  if (!(await confirmMerge(keptName, mergedName))) {
    button.focus();
    return;
  }
  const survivor = kept.dataset.contactId;
  const gone = merged.dataset.contactId;
  await serially(async () => {
    const item = itemOf(id);
    if (!item) return;
    item.setAttribute("aria-busy", "true");
    try {
      await api.post(`/merge-suggestions/${id}/merge`, { survivor_id: survivor });
    } catch (error) {
      item.removeAttribute("aria-busy");
      say(t("They could not be merged: {reason}", { reason: failure(error) }), { bad: true });
      return;
    }
    say(t("Merged {merged} into {kept}.", { merged: mergedName, kept: keptName }));
    removeItem(item);
    // The merged contact's other suggestions now name the one kept: read them again.
    if (qs(`.merge-side[data-contact-id="${gone}"]`, list)) {
      contacts.clear();
      await loadPage({ restart: true });
    }
  });
}

function dismiss(id) {
  return serially(async () => {
    const item = itemOf(id);
    if (!item) return;
    const { keptName, mergedName } = sides(item);
    item.setAttribute("aria-busy", "true");
    try {
      await api.post(`/merge-suggestions/${id}/dismiss`);
      say(t("Dismissed: {a} and {b} stay separate.", { a: keptName, b: mergedName }));
      removeItem(item);
    } catch (error) {
      item.removeAttribute("aria-busy");
      say(t("The suggestion could not be dismissed: {reason}", { reason: failure(error) }), { bad: true });
    }
  });
}

on(list, "click", "[data-action=merge]", (event, button) => merge(button.closest(".merge-item").dataset.id, button));
on(list, "click", "[data-action=dismiss]", (event, button) => dismiss(button.closest(".merge-item").dataset.id));
on(more, "click", () => serially(() => loadPage()));
serially(() => loadPage());
