// One row of the conversation list, built from the conversation (GET /conversations) and
// its preview (GET /conversations/previews). Customer text only ever goes in as text,
// in an element of its own with dir="auto".
import { el, icon } from "../dom.js";
import { t } from "../i18n.js";
import { mentionNodes } from "../mentions.js";
import { fillTime } from "../time.js";

const CHANNELS = () => ({
  email: t("Email channel"),
  sms: t("SMS channel"),
  telegram: t("Telegram channel"),
  webform: t("Web form channel"),
});
const PRIORITIES = () => ({
  urgent: t("Urgent priority"),
  high: t("High priority"),
  medium: t("Medium priority"),
  low: t("Low priority"),
});

/** Up to two letters of a name, whatever its script: "Ann Customer" → "AC" ("" for none). */
export function initials(name) {
  const words = String(name ?? "").trim().split(/\s+/).filter(Boolean);
  const letters = words.map((word) => Array.from(word.replace(/[^\p{L}]/gu, ""))[0]).filter(Boolean);
  return letters.slice(0, 2).join("").toLocaleUpperCase();
}

/** A round avatar: the initials, or a person icon for a name without letters (a number). */
export function avatar(name, className = "avatar conv__avatar") {
  const letters = initials(name);
  return el("span", { class: className, "aria-hidden": "true" }, letters || icon("user"));
}

/** The name a row shows: the contact's, else an identity, else a placeholder. */
export function displayName(preview) {
  return preview?.contact_name || preview?.contact_identity || t("Unnamed customer");
}

export function conversationHref(id, viewKey) {
  return `/conversations/${id}${viewKey ? `?view=${encodeURIComponent(viewKey)}` : ""}`;
}

export function channelIcon(kind) {
  const label = CHANNELS()[kind] ?? kind;
  const node = icon(`channel-${kind}`, label);
  node.classList.add("conv__channel");
  return node;
}

function previewLine(item, preview, id) {
  const last = preview?.last_message;
  const prefix = !last ? null : last.private ? t("Note:") : last.direction === "out" ? t("Replied:") : null;
  const text = last ? last.text || t("No text") : item.subject || t("No messages yet");
  const line = el("span", { class: "conv__preview", id });
  if (prefix) line.append(el("span", { class: "conv__prefix" }, prefix));
  // A note's mention tokens read as "@Name" chips; a customer's text stays as it is.
  const shown = last?.private ? mentionNodes(text) : [text];
  line.append(el("span", { class: "conv__text", dir: "auto" }, ...shown));
  if (item.unread > 0) {
    line.append(
      el("span", { class: "conv__unread", title: t("{n} unread", { n: item.unread }) }, String(item.unread)),
      el("span", { class: "visually-hidden" }, t("{n} unread", { n: item.unread })),
    );
  }
  return line;
}

function metaLine(item, preview, status) {
  const meta = el("span", { class: "conv__meta" });
  const priority = PRIORITIES()[item.priority];
  if (priority) meta.append(el("span", { class: "chip chip--priority", dataset: { priority: item.priority } }, priority));
  if (item.status !== status) meta.append(el("span", { class: "chip" }, statusName(item.status)));
  for (const label of item.labels) meta.append(el("span", { class: "chip chip--label", dir: "auto" }, label));
  if (preview?.assignee_name) {
    const who = t("Assignee: {name}", { name: preview.assignee_name });
    meta.append(
      el("span", { class: "avatar avatar--small conv__assignee", title: who, role: "img", "aria-label": who },
        initials(preview.assignee_name) || "?"),
    );
  }
  return meta.childElementCount ? meta : null;
}

function statusName(status) {
  return { open: t("Open now"), pending: t("Waiting on customer"), snoozed: t("Snoozed now"), resolved: t("Resolved now") }[status] ?? status;
}

/**
 * The <li> of a conversation. `selected`: its checkbox is ticked; `current`: it is the
 * conversation open on the page.
 */
export function conversationRow(item, preview, { selected, current, viewKey, status }) {
  const name = displayName(preview);
  const time = el("time", { class: "conv__time" });
  fillTime(time, preview?.last_message?.arrived_at ?? item.last_activity_at);
  const link = el(
    "a",
    {
      class: "conv__link",
      href: conversationHref(item.id, viewKey),
      "aria-current": current ? "page" : null,
      // Named by who and what was said; the chips below stay readable in the row.
      "aria-labelledby": `conv-${item.id}-name conv-${item.id}-preview`,
    },
    el(
      "span",
      { class: "conv__top" },
      el("span", { class: "conv__name", dir: "auto", id: `conv-${item.id}-name` }, name),
      preview ? channelIcon(preview.channel_kind) : null,
      time,
    ),
    previewLine(item, preview, `conv-${item.id}-preview`),
    metaLine(item, preview, status),
  );
  const check = el("input", {
    type: "checkbox",
    class: "conv__check",
    "aria-label": t("Select the conversation with {name}", { name }),
    checked: selected,
    dataset: { select: item.id },
  });
  return el(
    "li",
    {
      class: "conv",
      dataset: { id: item.id, unread: String(item.unread > 0), selected: String(selected) },
    },
    el("span", { class: "conv__pick" }, avatar(name), check),
    link,
  );
}
