// The lower half of the contact page: notes, tasks, the contact's conversations and the
// timeline across every channel. Each part loads on its own; the page calls `loadAll`.
import { api } from "../api.js";
import { el, on, qs, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";
import { timelineText } from "../timeline_text.js";
import { mentionNodes } from "../mentions.js";
import { fillTime } from "../time.js";
import { channelOf, showNotice, stageName, userName } from "./contacts_common.js";

const TIMELINE_PAGE = 30;

function empty(text) {
  return el("li", { class: "list-empty muted" }, text);
}

function statusName(status) {
  return { open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), resolved: t("Resolved") }[status] ?? status;
}

// --- notes -------------------------------------------------------------------------------

function noteItem(note) {
  return el(
    "li",
    { class: "note", dataset: { noteId: note.id } },
    el(
      "div",
      { class: "note__meta" },
      el("span", { class: "note__author" }, userName(note.author_id)),
      fillTime(el("time", { class: "muted" }), note.created_at),
    ),
    el("p", { class: "note__text", dir: "auto" }, ...mentionNodes(note.text)),
  );
}

async function loadNotes(root, contactId) {
  const list = qs("[data-notes]", root);
  const page = await api.get(`/contacts/${contactId}/notes`, { limit: 50 });
  replaceChildren(list, ...(page.items.length ? page.items.map(noteItem) : [empty(t("No notes yet."))]));
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
