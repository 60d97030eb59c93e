// The contact panel beside the thread: who the customer is (identities, lifecycle stage,
// owner, tags, attributes, local time), their open tasks, their other conversations and
// their timeline across every channel. Read-only; refreshed on `resync` and when the
// contact's conversations change.
import { api } from "../api.js";
import { el, icon, qs, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { timelineText } from "../timeline_text.js";
import { live } from "../live.js";
import { initials } from "../inbox/row.js";
import { clockTime, fillTime } from "../time.js";
import { channelOf, contactOf, userName } from "./thread_directory.js";

const root = qs("[data-panel]");
const IDENTITY_ICONS = { email: "channel-email", phone: "channel-sms", telegram: "channel-telegram" };

function stageName(stage) {
  return (
    {
      new: t("New"),
      lead: t("Lead"),
      qualified: t("Qualified"),
      customer: t("Customer"),
      lost: t("Lost"),
    }[stage] ?? stage
  );
}

function statusName(status) {
  return (
    { open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), resolved: t("Resolved") }[status] ?? status
  );
}

function empty(text) {
  return el("li", { class: "panel-list__empty muted" }, text);
}

function attributeText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? t("Yes") : t("No");
  if (typeof value === "object" && "amount" in value) return `${value.amount} ${value.currency}`;
  return String(value);
}

async function showContact(contactId) {
  const contact = await contactOf(contactId, true);
  const name = contact.name || contact.identities?.[0]?.value || t("Unnamed contact");
  setText(qs("[data-panel-name]", root), name);
  // Letters of the name, else a person (a phone number or a hostile string has none).
  replaceChildren(qs("[data-panel-initials]", root), initials(name) || icon("user"));
  const meta = qs("[data-panel-meta]", root);
  replaceChildren(meta, el("span", { class: "stage", dataset: { stage: contact.lifecycle_stage } }, stageName(contact.lifecycle_stage)));
  if (contact.timezone) {
    try {
      meta.append(" · ", t("{time} their time", { time: clockTime(new Date(), contact.timezone) }));
    } catch {
      /* an unknown zone name: no local time */
    }
  }

  replaceChildren(
    qs("[data-panel-identities]", root),
    ...(contact.identities.length
      ? contact.identities.map((identity) =>
          el(
            "li",
            { class: "panel-list__item identity" },
            icon(IDENTITY_ICONS[identity.kind] ?? "user", identity.kind),
            el("bdi", { class: "identity__value", dir: "auto" }, identity.value),
          ),
        )
      : [empty(t("No identities."))]),
  );

  const facts = qs("[data-panel-facts]", root);
  const rows = [[t("Owner"), contact.owner_id ? "…" : t("Nobody"), contact.owner_id]];
  if (contact.language) rows.push([t("Their language"), contact.language]);
  if (contact.lifetime_value) rows.push([t("Lifetime value"), attributeText(contact.lifetime_value)]);
  for (const [key, value] of Object.entries(contact.attributes ?? {})) rows.push([key, attributeText(value), null, true]);
  replaceChildren(
    facts,
    ...rows.flatMap(([term, value, ownerId, custom]) => {
      const dd = el("dd", { dir: "auto" }, value);
      if (ownerId) userName(ownerId).then((n) => setText(dd, n ?? t("A former user")));
      return [el("dt", custom ? { dir: "auto" } : {}, term), dd];
    }),
  );
  replaceChildren(
    qs("[data-panel-tags]", root),
    ...(contact.tags ?? []).map((tag) => el("li", { class: "chip", dir: "auto" }, tag)),
  );
  return contact;
}

async function showTasks(contactId) {
  const page = await api.get("/tasks", { contact_id: contactId, status: "open", limit: 20 });
  replaceChildren(
    qs("[data-panel-tasks]", root),
    ...(page.items.length
      ? page.items.map((task) => {
          const due = fillTime(el("time", { class: "task__due" }), task.due_at);
          const overdue = new Date(task.due_at) < new Date();
          return el(
            "li",
            { class: "panel-list__item task", dataset: { overdue: String(overdue) } },
            el("span", { class: "task__title", dir: "auto" }, task.title),
            due,
          );
        })
      : [empty(t("No open tasks."))]),
  );
}

async function showConversations(contactId, currentId) {
  const page = await api.get("/conversations", { contact_id: contactId, limit: 20 });
  const others = page.items.filter((c) => c.id !== currentId);
  replaceChildren(
    qs("[data-panel-conversations]", root),
    ...(others.length
      ? others.map((conversation) => {
          const channel = channelOf(conversation.channel_id);
          return el(
            "li",
            { class: "panel-list__item" },
            el(
              "a",
              { class: "conversation-link", href: `/conversations/${conversation.id}` },
              channel ? icon(channel.icon, channel.name) : null,
              el("span", { class: "conversation-link__subject", dir: "auto" }, conversation.subject || channel?.name || t("Untitled conversation")),
              el("span", { class: "status-pill", dataset: { status: conversation.status } }, statusName(conversation.status)),
              fillTime(el("time", { class: "muted" }), conversation.last_activity_at),
            ),
          );
        })
      : [empty(t("No other conversations."))]),
  );
}

async function showTimeline(contactId, conversationId) {
  const page = await api.get(`/contacts/${contactId}/timeline`, { limit: 50 });
  const list = qs("[data-panel-timeline]", root);
  replaceChildren(
    list,
    ...(page.items.length
      ? page.items.map((event) => {
          const inbound = event.message?.direction === "in";
          const item = el(
            "li",
            { class: "timeline-item", dataset: { kind: event.kind, here: String(event.conversation_id === conversationId) } },
            el("span", { class: "timeline-item__mark", dataset: { inbound: String(inbound) } }),
            el("span", { class: "timeline-item__text", dir: event.message ? "auto" : null }, timelineText(event)),
            fillTime(el("time", { class: "timeline-item__time muted" }), event.occurred_at),
          );
          if (event.conversation_id && event.conversation_id !== conversationId) {
            item.append(el("a", { class: "timeline-item__link", href: `/conversations/${event.conversation_id}` }, t("Open")));
          }
          return item;
        })
      : [empty(t("Nothing yet."))]),
  );
  const summary = qs(".panel-timeline__summary", root);
  summary.dataset.count = String(page.items.length);
}

async function load() {
  const contactId = root.dataset.contactId;
  const conversationId = root.dataset.conversationId;
  root.setAttribute("aria-busy", "true");
  const results = await Promise.allSettled([
    showContact(contactId),
    showTasks(contactId),
    showConversations(contactId, conversationId),
    showTimeline(contactId, conversationId),
  ]);
  for (const result of results) {
    if (result.status === "rejected") console.warn("panel: a part could not be loaded", result.reason);
  }
  root.setAttribute("aria-busy", "false");
}

if (root) {
  let pending = null;
  const reload = () => {
    clearTimeout(pending);
    pending = setTimeout(load, 300);
  };
  live.on("resync", reload);
  live.on("conversation.created", (data) => data.contact_id === root.dataset.contactId && reload());
  live.on("message.created", (data) => data.contact_id === root.dataset.contactId && reload());
  load();
}
