// The conversation header (templates/conversation/actions.html): who and where, status,
// priority, assignee and labels; the actions (assign, labels, priority, snooze, resolve,
// reopen) through PATCH /api/v1/conversations/{id}; the collision signals "Name is
// viewing" / "Name is typing…"; and the conversation's keyboard shortcuts.
import { api } from "../api.js";
import { el, on, qs, qsa, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";
import { absoluteTime } from "../time.js";
import {
  change,
  channelId,
  contactId,
  conversation,
  conversationId,
  directory,
  myId,
  onConversation,
  refresh,
} from "./actions_state.js";
import { nextConversation, snoozePreset } from "./actions_keys.js";

const head = qs("[data-convhead]");
const field = (name) => qs(`[data-field="${name}"]`, head);

const STATUS = () => ({ open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), resolved: t("Resolved") });
const PRIORITY = () => ({ urgent: t("Urgent"), high: t("High"), medium: t("Medium"), low: t("Low"), none: t("No priority") });
const TYPING_SHOWN_MS = 6000; // a typing signal not refreshed within this is over

let teams = [];

// --- what the header shows ----------------------------------------------------------

async function fillWho() {
  const [contact, channel] = await Promise.all([
    api.get(`/contacts/${contactId}`).catch(() => null),
    api.get(`/channels/${channelId}`).catch(() => null),
  ]);
  if (contact) {
    const identity = contact.identities?.[0]?.value;
    setText(field("contact"), contact.name || identity || t("Unknown contact"));
  }
  if (channel) setText(field("channel"), channel.name);
}

async function show(item) {
  head.dataset.status = item.status;
  const status = field("status");
  status.dataset.status = item.status;
  const statusText = item.status === "snoozed" && item.snoozed_until
    ? t("Snoozed until {time}", { time: absoluteTime(item.snoozed_until) })
    : STATUS()[item.status] ?? item.status;
  setText(status, statusText);
  qs("[data-action=resolve]", head).hidden = item.status === "resolved";
  qs("[data-action=reopen]", head).hidden = item.status !== "resolved";

  const priority = field("priority");
  priority.hidden = item.priority === "none";
  priority.dataset.priority = item.priority;
  replaceChildren(priority, el("span", { class: "priority-dot", "data-priority": item.priority, "aria-hidden": "true" }), PRIORITY()[item.priority]);
  for (const button of qsa("[data-action=priority]", head)) {
    button.setAttribute("aria-pressed", String(button.dataset.value === item.priority));
  }

  const assignee = field("assignee");
  const people = await directory().catch(() => []);
  const person = people.find((user) => user.id === item.assignee_id);
  const team = teams.find((one) => one.id === item.team_id);
  const who = item.assignee_id
    ? (item.assignee_id === myId ? t("You") : person?.name ?? t("Someone"))
    : null;
  assignee.hidden = !who && !team;
  setText(assignee, [who, team?.name].filter(Boolean).join(" · "));
  assignee.title = t("Assignee");
  qs("[data-action=assign-me]", head).hidden = item.assignee_id === myId;

  replaceChildren(field("labels"), item.labels.map((label) => el("span", { class: "label-chip", dir: "auto" }, label)));
  replaceChildren(
    field("label-list"),
    item.labels.length === 0
      ? el("li", { class: "dropdown__empty muted" }, t("No labels yet"))
      : item.labels.map((label) =>
          el("li", { class: "dropdown__row" },
            el("span", { class: "label-chip", dir: "auto" }, label),
            el("button", {
              class: "icon-button icon-button--small",
              type: "button",
              "data-action": "remove-label",
              "data-label": label,
              "aria-label": t("Remove the label {label}", { label }),
            }, "×"),
          ),
        ),
  );
  fillAssignMenu();
}

// --- the assign menu --------------------------------------------------------------------

async function fillAssignMenu() {
  const needle = (field("assign-filter").value || "").trim().toLocaleLowerCase();
  const current = conversation();
  const people = await directory().catch(() => []);
  const matches = (text) => !needle || text.toLocaleLowerCase().includes(needle);
  const presenceText = { online: t("Online"), away: t("Away"), offline: t("Offline") };
  replaceChildren(
    field("assign-users"),
    people.filter((user) => matches(user.name)).map((user) =>
      el("li", {},
        el("button", {
          class: "dropdown__item",
          type: "button",
          "data-action": "assign",
          "data-user-id": user.id,
          "aria-pressed": String(current?.assignee_id === user.id),
        },
        el("span", { class: "presence-dot", "data-presence": user.presence, title: presenceText[user.presence] }),
        el("span", { class: "dropdown__text", dir: "auto" }, user.id === myId ? t("{name} (you)", { name: user.name }) : user.name),
        el("span", { class: "visually-hidden" }, presenceText[user.presence])),
      ),
    ),
  );
  replaceChildren(
    field("assign-teams"),
    teams.filter((team) => matches(team.name)).map((team) =>
      el("li", {},
        el("button", {
          class: "dropdown__item",
          type: "button",
          "data-action": "team",
          "data-team-id": team.id,
          "aria-pressed": String(current?.team_id === team.id),
        }, el("span", { class: "dropdown__text", dir: "auto" }, team.name))),
    ),
  );
}

// --- actions ------------------------------------------------------------------------------

function notice(text) {
  const node = field("notice");
  setText(node, text);
  node.hidden = !text;
}

/** Run a change, showing what went wrong in the header's notice. */
async function act(changes, options = {}) {
  notice("");
  try {
    await change(changes, options);
    return true;
  } catch (err) {
    if (err.conflict) {
      notice(t("A new message arrived. Have a look at it, then try again."));
    } else if (err.fields && Object.keys(err.fields).length) {
      notice(Object.values(err.fields).join(" "));
    } else {
      notice(err.message || t("That did not work. Try again."));
    }
    return false;
  }
}

function closeMenus() {
  for (const menu of qsa("details.dropdown[data-menu][open]", head)) menu.open = false;
}

export const actions = {
  resolve: () => act({ status: "resolved" }, { guard: true }),
  reopen: () => act({ status: "open" }),
  assignToMe: () => act({ assignee_id: myId }, { guard: true }),
};

on(head, "click", "[data-action]", async (event, target) => {
  const action = target.dataset.action;
  if (action === "resolve") await actions.resolve();
  else if (action === "reopen") await actions.reopen();
  else if (action === "assign-me") await actions.assignToMe();
  else if (action === "assign") {
    closeMenus();
    await act({ assignee_id: target.dataset.userId }, { guard: true });
  } else if (action === "unassign") {
    closeMenus();
    await act({ assignee_id: null });
  } else if (action === "team") {
    closeMenus();
    const current = conversation();
    await act({ team_id: current?.team_id === target.dataset.teamId ? null : target.dataset.teamId });
  } else if (action === "priority") {
    closeMenus();
    await act({ priority: target.dataset.value });
  } else if (action === "remove-label") {
    await act({ remove_labels: [target.dataset.label] });
    qs("#label-new", head).focus();
  } else if (action === "snooze") {
    closeMenus();
    await act({ status: "snoozed", snoozed_until: snoozePreset(target.dataset.preset).toISOString() }, { guard: true });
  }
});

on(head, "submit", "[data-form=add-label]", async (event, form) => {
  event.preventDefault();
  const input = form.elements.label;
  const label = input.value.trim().toLocaleLowerCase();
  if (!label) return;
  if (await act({ add_labels: [label] })) input.value = "";
  input.focus();
});

on(head, "submit", "[data-form=snooze-until]", async (event, form) => {
  event.preventDefault();
  const value = form.elements.until.value;
  const until = value ? new Date(value) : null;
  if (!until || Number.isNaN(until.getTime()) || until <= new Date()) {
    notice(t("Pick a time in the future."));
    return;
  }
  closeMenus();
  await act({ status: "snoozed", snoozed_until: until.toISOString() }, { guard: true });
});

on(head, "input", "[data-field=assign-filter]", () => fillAssignMenu());

/** Open a menu towards the middle of the pane, so that it is not cut off at its edge. */
function align(menu) {
  const pane = menu.closest(".pane") ?? document.body;
  const box = menu.getBoundingClientRect();
  const area = pane.getBoundingClientRect();
  const rightHalf = box.left + box.width / 2 > area.left + area.width / 2;
  const rtl = getComputedStyle(menu).direction === "rtl";
  menu.dataset.align = rightHalf !== rtl ? "end" : "start";
}

// One menu open at a time; an opened menu focuses its first control.
for (const menu of qsa("details.dropdown[data-menu]")) {
  menu.addEventListener("toggle", () => {
    if (!menu.open) return;
    align(menu);
    for (const other of qsa("details.dropdown[data-menu][open]")) if (other !== menu) other.open = false;
    if (menu.dataset.menu === "assign") directory({ fresh: true }).then(fillAssignMenu, () => {});
    const first = qs("input:not([type=hidden]), button", qs(".dropdown__panel", menu));
    first?.focus();
  });
}
on(document, "keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = qs("details.dropdown[data-menu][open]");
  if (open) {
    open.open = false;
    qs("summary", open).focus();
  }
});
on(document, "click", (event) => {
  for (const menu of qsa("details.dropdown[data-menu][open]")) if (!menu.contains(event.target)) menu.open = false;
});

// --- keyboard shortcuts ------------------------------------------------------------------

function typingInField(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

on(document, "keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey) return;
  // Alt shortcuts use the physical key (event.code): they work with any keyboard layout,
  // and Alt+letter on a Mac types a character instead of giving the letter.
  if (event.altKey && !event.shiftKey) {
    const run = {
      KeyR: actions.resolve,
      KeyA: actions.assignToMe,
      KeyS: () => { const menu = qs("[data-menu=assign]", head); menu.open = true; },
      ArrowDown: () => nextConversation(1),
      ArrowUp: () => nextConversation(-1),
    }[event.code];
    if (run) {
      event.preventDefault();
      run();
    }
    return;
  }
  // In the list pane, J/K move within the list (js/inbox/list.js).
  if (event.altKey || typingInField(event.target) || event.target.closest?.(".pane--list")) return;
  if (event.key === "j" || event.key === "k") {
    event.preventDefault();
    nextConversation(event.key === "j" ? 1 : -1);
  } else if (event.key === "?") {
    event.preventDefault();
    const help = qs("[data-menu=help]");
    help.open = !help.open;
  }
});

// --- collision signals -------------------------------------------------------------------

const viewers = new Set();
const typists = new Map(); // user id -> timer that ends their typing

async function showCollision() {
  const people = await directory().catch(() => []);
  const names = (ids) => ids.map((id) => people.find((user) => user.id === id)?.name ?? t("Someone"));
  const typing = names([...typists.keys()]);
  const watching = names([...viewers].filter((id) => !typists.has(id)));
  const parts = [];
  if (typing.length === 1) parts.push(t("{name} is typing…", { name: typing[0] }));
  else if (typing.length > 1) parts.push(t("{names} are typing…", { names: typing.join(", ") }));
  if (watching.length === 1) parts.push(t("{name} is viewing", { name: watching[0] }));
  else if (watching.length > 1) parts.push(t("{names} are viewing", { names: watching.join(", ") }));
  const node = field("collision");
  node.dataset.typing = String(typing.length > 0);
  setText(node, parts.join(" · "));
}

async function knownIds(ids) {
  const people = await directory().catch(() => []);
  if (ids.some((id) => !people.some((user) => user.id === id))) await directory({ fresh: true }).catch(() => {});
}

live.on("conversation.viewers", async (data) => {
  if (data.conversation_id !== conversationId) return;
  viewers.clear();
  for (const id of data.viewers ?? []) if (id !== myId) viewers.add(id);
  for (const id of [...typists.keys()]) if (!viewers.has(id)) { clearTimeout(typists.get(id)); typists.delete(id); }
  await knownIds([...viewers]);
  showCollision();
});

live.on("conversation.typing", async (data) => {
  if (data.conversation_id !== conversationId || data.user_id === myId) return;
  clearTimeout(typists.get(data.user_id));
  if (data.typing) {
    typists.set(data.user_id, setTimeout(() => { typists.delete(data.user_id); showCollision(); }, TYPING_SHOWN_MS));
  } else {
    typists.delete(data.user_id);
  }
  await knownIds([data.user_id]);
  showCollision();
});

// --- start -----------------------------------------------------------------------------------

if (head) {
  onConversation((item) => { show(item).catch((err) => console.warn("header:", err)); });
  api.get("/directory/teams", { channel_id: channelId })
    .then((page) => { teams = page.items; const item = conversation(); if (item) show(item); })
    .catch(() => {});
  fillWho();
  refresh().catch((err) => notice(err.message));
}
