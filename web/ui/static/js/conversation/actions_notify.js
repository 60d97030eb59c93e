// Notifications as they arrive (notification.created, only ever sent to their user): a
// toast saying who mentioned you or gave you a conversation, with a link to it. The
// notifications themselves stay in GET /api/v1/notifications.
import { api } from "../api.js";
import { el, on, qs } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";

const SHOWN_MS = 12000;
const MAX_SHOWN = 3;

function region() {
  let node = qs(".toasts");
  if (!node) {
    node = el("section", { class: "toasts", "aria-label": t("Notifications"), "aria-live": "polite" });
    document.body.append(node);
  }
  return node;
}

async function describe(data) {
  const page = await api.get("/notifications", { unread: true, limit: 20 });
  const item = page.items.find((one) => one.id === data.notification_id);
  let actor = null;
  if (item?.actor_id) actor = await api.get(`/users/${item.actor_id}`).then((user) => user.name || user.email, () => null);
  const who = actor ?? t("Someone");
  if (data.kind === "mention") return t("{name} mentioned you in a note", { name: who });
  if (data.kind === "assigned") return t("{name} assigned a conversation to you", { name: who });
  return t("You have a new notification");
}

function dismiss(toast) {
  toast.remove();
}

live.on("notification.created", async (data) => {
  let text;
  try {
    text = await describe(data);
  } catch {
    text = t("You have a new notification");
  }
  const link = data.conversation_id
    ? el("a", { class: "toast__link", href: `/conversations/${data.conversation_id}` }, t("Open"))
    : null;
  const toast = el("div", { class: "toast", role: "status", "data-notification-id": data.notification_id },
    el("span", { class: "toast__text" }, text),
    link,
    el("button", { class: "icon-button icon-button--small", type: "button", "data-action": "dismiss-toast", "aria-label": t("Dismiss") }, "×"));
  const node = region();
  node.append(toast);
  while (node.children.length > MAX_SHOWN) node.firstElementChild.remove();
  setTimeout(() => dismiss(toast), SHOWN_MS);
});

on(document, "click", "[data-action=dismiss-toast]", (event, button) => dismiss(button.closest(".toast")));
