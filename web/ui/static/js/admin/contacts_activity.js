// The lower half of the contact page: notes (added; edited in place and deleted by their
// author, an admin or a manager), tasks, the contact's conversations and the timeline
// across every channel. Each part loads on its own; the page calls `loadAll`.
import { api, ApiError } from "../api.js";
import { el, on, qs, qsa, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";
import { timelineText } from "../timeline_text.js";
import { mentionNodes, mentionText } from "../mentions.js";
import { absoluteTime, fillTime } from "../time.js";
import { channelOf, data, filledIn, showNotice, stageName, userName } from "./contacts_common.js";

const TIMELINE_PAGE = 30;

function empty(text) {
  return el("li", { class: "list-empty muted" }, text);
}

function statusName(status) {
  return { open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), resolved: t("Resolved") }[status] ?? status;
}

// --- notes -------------------------------------------------------------------------------

const NOTE_QUOTE = 280;
const notes = new Map(); // id -> the note as the API gave it (the editor shows its raw text)
let notesGeneration = 0; // an older answer does not overwrite a newer one
let deleting = null; // the id of the note the delete dialog asks about

/** Whether this user may edit and delete `note` (inbox/notes.py may_change: its author,
 * an admin or a manager); the API checks again. */
function mayChange(note) {
  return Boolean(data.can?.change_notes) || (Boolean(note.author_id) && note.author_id === data.user_id);
}

function wasEdited(note) {
  return new Date(note.updated_at).getTime() > new Date(note.created_at).getTime();
}

function fromTemplate(id) {
  return qs(id).content.firstElementChild.cloneNode(true);
}

function noteItem(note) {
  notes.set(note.id, note);
  const metaId = `note-meta-${note.id}`;
  const item = el(
    "li",
    { class: "note", dataset: { noteId: note.id, updatedAt: note.updated_at } },
    el(
      "div",
      { class: "note__head" },
      el(
        "div",
        { class: "note__meta", id: metaId },
        el("span", { class: "note__author" }, userName(note.author_id)),
        fillTime(el("time", { class: "muted" }), note.created_at),
        wasEdited(note) ? el("span", { class: "note__edited muted", title: absoluteTime(note.updated_at) }, t("Edited")) : null,
      ),
    ),
    el("p", { class: "note__text", dir: "auto" }, ...mentionNodes(note.text)),
  );
  if (mayChange(note)) {
    const actions = fromTemplate("#note-actions-template");
    // Which note a button is about: its author and time.
    for (const button of qsa("button", actions)) button.setAttribute("aria-describedby", metaId);
    qs(".note__head", item).append(actions);
  }
  return item;
}

/** Make `list`'s children exactly `wanted`, moving only what is out of place, so that an
 * item kept as it was keeps the focus (and an open editor its text). */
function syncList(list, wanted) {
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  wanted.forEach((item, index) => {
    const here = list.children[index] ?? null;
    if (here !== item) list.insertBefore(item, here);
  });
  while (list.children.length > wanted.length) list.lastElementChild.remove();
  if (focused?.isConnected && document.activeElement !== focused) focused.focus();
}

async function loadNotes(root, contactId) {
  const list = qs("[data-notes]", root);
  const mine = ++notesGeneration;
  const page = await api.get(`/contacts/${contactId}/notes`, { limit: 50 });
  if (mine !== notesGeneration) return;
  const shown = new Map(qsa("[data-note-id]", list).map((item) => [item.dataset.noteId, item]));
  notes.clear();
  const items = page.items.map((note) => {
    const item = shown.get(note.id);
    // One being edited stays open; an unchanged one stays as it is.
    if (item && (item.dataset.editing === "true" || item.dataset.updatedAt === note.updated_at)) {
      notes.set(note.id, note);
      return item;
    }
    return noteItem(note);
  });
  syncList(list, items.length ? items : [empty(t("No notes yet."))]);
}

function noteStatus(root, text) {
  setText(qs("[data-notes-status]", root), text);
}

function startEdit(item) {
  const note = notes.get(item.dataset.noteId);
  if (!note || item.dataset.editing === "true") return;
  const editor = fromTemplate("#note-editor-template");
  const input = editor.elements.namedItem("text");
  input.value = note.text; // the raw text: mentions as their tokens
  item.dataset.editing = "true";
  qs(".note__text", item).hidden = true;
  qs(".note__actions", item).hidden = true;
  item.append(editor);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function stopEdit(item, focus = true) {
  qs("[data-note-editor]", item)?.remove();
  delete item.dataset.editing;
  qs(".note__text", item).hidden = false;
  qs(".note__actions", item).hidden = false;
  if (focus) qs("[data-action=edit-note]", item)?.focus();
}

async function saveEdit(root, item, editor) {
  const input = editor.elements.namedItem("text");
  const text = filledIn(input);
  if (text === null) return;
  const note = notes.get(item.dataset.noteId);
  if (!note || text === note.text) {
    stopEdit(item);
    return;
  }
  const buttons = qsa("button", editor);
  for (const button of buttons) button.disabled = true;
  showNotice(qs("[data-error]", root), null);
  noteStatus(root, "");
  try {
    const saved = await api.patch(`/notes/${note.id}`, { text });
    const fresh = noteItem(saved);
    item.replaceWith(fresh);
    qs("[data-action=edit-note]", fresh)?.focus();
    noteStatus(root, t("Note saved."));
  } catch (error) {
    showNotice(qs("[data-error]", root), error);
    for (const button of buttons) button.disabled = false;
    input.focus();
  }
}

function askDelete(root, item) {
  const note = notes.get(item.dataset.noteId);
  const dialog = qs("[data-delete-note-dialog]", root);
  if (!note || !dialog) return;
  const text = mentionText(note.text);
  setText(qs("[data-delete-note-text]", dialog), text.length > NOTE_QUOTE ? `${text.slice(0, NOTE_QUOTE)}…` : text);
  deleting = note.id;
  dialog.returnValue = "";
  dialog.showModal();
}

async function confirmedDelete(root, dialog, after) {
  const list = qs("[data-notes]", root);
  const noteId = deleting;
  deleting = null;
  const item = qsa("[data-note-id]", list).find((node) => node.dataset.noteId === noteId) ?? null;
  const opener = item ? qs("[data-action=delete-note]", item) : null;
  if (dialog.returnValue !== "delete" || !noteId) {
    opener?.focus();
    return;
  }
  showNotice(qs("[data-error]", root), null);
  noteStatus(root, "");
  try {
    await api.delete(`/notes/${noteId}`);
  } catch (error) {
    // Deleted by someone else meanwhile: gone all the same.
    if (!(error instanceof ApiError && error.notFound)) {
      showNotice(qs("[data-error]", root), error);
      opener?.focus();
      return;
    }
  }
  notes.delete(noteId);
  // The focus goes to the next note's (or the previous one's) Edit, else to a new note.
  const neighbours = [item?.nextElementSibling, item?.previousElementSibling];
  const next = neighbours.map((node) => node && qs("[data-action=edit-note]", node)).find(Boolean);
  item?.remove();
  if (!list.children.length) list.append(empty(t("No notes yet.")));
  (next ?? qs("[data-note-form] textarea", root))?.focus();
  noteStatus(root, t("Note deleted."));
  after();
}

function wireNotes(root, contactId, after) {
  const form = qs("[data-note-form]", root);
  on(form, "submit", async (event) => {
    event.preventDefault();
    const input = form.elements.namedItem("text");
    const text = input.value.trim();
    if (!text) return input.focus();
    const button = qs("button[type=submit]", form);
    button.disabled = true;
    try {
      const note = await api.post(`/contacts/${contactId}/notes`, { text });
      input.value = "";
      const list = qs("[data-notes]", root);
      qs(".list-empty", list)?.remove();
      list.prepend(noteItem(note));
      after();
    } catch (error) {
      showNotice(qs("[data-error]", root), error);
    } finally {
      button.disabled = false;
    }
  });

  const list = qs("[data-notes]", root);
  const note = (node) => node.closest("[data-note-id]");
  on(list, "click", "[data-action=edit-note]", (event, button) => startEdit(note(button)));
  on(list, "click", "[data-action=delete-note]", (event, button) => askDelete(root, note(button)));
  on(list, "click", "[data-action=cancel-note]", (event, button) => stopEdit(note(button)));
  on(list, "submit", "[data-note-editor]", (event, editor) => {
    event.preventDefault();
    saveEdit(root, note(editor), editor);
  });
  on(list, "keydown", "[data-note-editor]", (event, editor) => {
    if (event.key === "Escape") {
      event.preventDefault();
      stopEdit(note(editor));
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      editor.requestSubmit();
    }
  });
  const dialog = qs("[data-delete-note-dialog]", root);
  if (dialog) on(dialog, "close", () => confirmedDelete(root, dialog, after));

  // Notes added, edited or deleted by others (to everyone who sees the contact).
  const reload = (event) => event.contact_id === contactId && loadNotes(root, contactId).catch(() => {});
  for (const kind of ["note.added", "note.updated", "note.deleted"]) live.on(kind, reload);
}

// --- tasks -------------------------------------------------------------------------------

function taskItem(task) {
  const done = task.status === "done";
  const overdue = !done && new Date(task.due_at) < new Date();
  const id = `task-${task.id}`;
  return el(
    "li",
    { class: "task-item", dataset: { taskId: task.id, status: task.status, overdue: String(overdue) } },
    el("input", { type: "checkbox", id, checked: done, "data-action": "toggle-task" }),
    el("label", { class: "task-item__title", for: id, dir: "auto" }, task.title),
    el(
      "span",
      { class: "task-item__due" },
      task.assignee_id ? el("span", { class: "muted" }, `${userName(task.assignee_id)} · `) : null,
      fillTime(el("time", {}), task.due_at),
    ),
  );
}

async function loadTasks(root, contactId) {
  const page = await api.get("/tasks", { contact_id: contactId, limit: 100 });
  // Open ones first, each group by due time (the API's order).
  const items = [...page.items].sort((a, b) => (a.status === b.status ? 0 : a.status === "open" ? -1 : 1));
  replaceChildren(qs("[data-tasks]", root), ...(items.length ? items.map(taskItem) : [empty(t("No tasks."))]));
}

function wireTasks(root, contactId, after) {
  on(root, "change", "[data-action=toggle-task]", async (event, box) => {
    const item = box.closest("[data-task-id]");
    box.disabled = true;
    try {
      const task = await api.patch(`/tasks/${item.dataset.taskId}`, { status: box.checked ? "done" : "open" });
      item.replaceWith(taskItem(task));
    } catch (error) {
      box.checked = !box.checked;
      box.disabled = false;
      showNotice(qs("[data-error]", root), error);
    }
  });
  const form = qs("[data-task-form]", root);
  on(form, "submit", async (event) => {
    event.preventDefault();
    const title = form.elements.namedItem("title").value.trim();
    const due = form.elements.namedItem("due").value;
    if (!title || !due) return form.reportValidity();
    try {
      // datetime-local is the user's local time: as an instant with its offset.
      await api.post("/tasks", { title, due_at: new Date(due).toISOString(), contact_id: contactId });
      form.reset();
      await loadTasks(root, contactId);
      after();
    } catch (error) {
      showNotice(qs("[data-error]", root), error);
    }
  });
}

// --- conversations -----------------------------------------------------------------------

function conversationItem(conversation) {
  const channel = channelOf(conversation.channel_id);
  return el(
    "li",
    {},
    el(
      "a",
      { class: "conversation-row", href: `/conversations/${conversation.id}` },
      channel ? el("span", { class: "conversation-row__channel muted" }, channel.name) : null,
      el("span", { class: "conversation-row__subject", dir: "auto" }, conversation.subject || channel?.name || t("Untitled conversation")),
      el("span", { class: "badge", dataset: { status: conversation.status } }, statusName(conversation.status)),
      fillTime(el("time", { class: "muted" }), conversation.last_activity_at),
    ),
  );
}

async function loadConversations(root, contactId) {
  const page = await api.get("/conversations", { contact_id: contactId, limit: 50 });
  replaceChildren(
    qs("[data-conversations]", root),
    ...(page.items.length ? page.items.map(conversationItem) : [empty(t("No conversations yet."))]),
  );
}

// --- timeline ----------------------------------------------------------------------------

function eventText(event) {
  const text = timelineText(event, 280);
  if (!event.message && event.kind === "contact.stage_changed" && event.data?.to) {
    return `${text}: ${stageName(event.data.to)}`;
  }
  return text;
}

function timelineItem(event) {
  const inbound = event.message?.direction === "in";
  const channel = event.message ? channelOf(event.message.channel_id) : null;
  return el(
    "li",
    { class: "timeline__item", dataset: { kind: event.kind, inbound: String(inbound) } },
    el("span", { class: "timeline__mark", "aria-hidden": "true" }),
    el(
      "div",
      { class: "timeline__body" },
      el(
        "div",
        { class: "timeline__meta muted" },
        channel ? el("span", {}, channel.name) : null,
        fillTime(el("time", {}), event.occurred_at),
        event.conversation_id ? el("a", { href: `/conversations/${event.conversation_id}` }, t("Open conversation")) : null,
      ),
      el("p", { class: "timeline__text", dir: event.message ? "auto" : null }, eventText(event)),
    ),
  );
}

let timelineCursor = null;

async function loadTimeline(root, contactId, more = false) {
  const list = qs("[data-timeline]", root);
  const page = await api.get(`/contacts/${contactId}/timeline`, { limit: TIMELINE_PAGE, cursor: more ? timelineCursor : null });
  const items = page.items.map(timelineItem);
  if (more) list.append(...items);
  else replaceChildren(list, ...(items.length ? items : [empty(t("Nothing yet."))]));
  timelineCursor = page.next_cursor;
  qs("[data-timeline-more-box]", root).hidden = !timelineCursor;
}

/** Load every part; a part that fails says so without stopping the others. */
export async function loadAll(root, contactId) {
  const results = await Promise.allSettled([
    loadNotes(root, contactId),
    loadTasks(root, contactId),
    loadConversations(root, contactId),
    loadTimeline(root, contactId),
  ]);
  const failed = results.find((result) => result.status === "rejected");
  if (failed) showNotice(qs("[data-error]", root), failed.reason);
}

export function refreshTimeline(root, contactId) {
  return loadTimeline(root, contactId).catch((error) => showNotice(qs("[data-error]", root), error));
}

/** Wire the forms and buttons of these parts once. */
export function wireActivity(root, contactId) {
  const after = () => refreshTimeline(root, contactId);
  wireNotes(root, contactId, after);
  wireTasks(root, contactId, after);
  on(root, "click", "[data-action=timeline-more]", async (event, button) => {
    button.disabled = true;
    try {
      await loadTimeline(root, contactId, true);
    } catch (error) {
      showNotice(qs("[data-error]", root), error);
    } finally {
      button.disabled = false;
    }
  });
}
