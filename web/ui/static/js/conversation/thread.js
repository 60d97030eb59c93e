// The thread of the open conversation: its messages (every page, oldest first, newest at
// the bottom), private notes, attachments, delivery ticks with Retry, emails' formatted
// HTML in a sandboxed frame, and activity lines from the contact's timeline. Live:
// message.created / message.updated / message.delivery / conversation.updated, and a
// full refetch on `resync`.
//
// Customer text is only ever set as text (dom.js), with dir="auto".
import { api } from "../api.js";
import { el, icon, on, qs, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";
import { mentionNodes } from "../mentions.js";
import { absoluteTime, clockTime, fillTime } from "../time.js";
import { channelOf, contactOf, fileSize, userName } from "./thread_directory.js";

const PAGE = 200;
const TIMELINE_PAGES = 10; // activity lines: the contact's newest 10 × 200 events at most
const IMAGE_PREVIEW = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"]);
const FAILED = "failed_permanent";
// Timeline kinds shown as activity lines in the thread.
const ACTIVITY_KINDS = new Set([
  "conversation.assigned",
  "conversation.status_changed",
  "conversation.labels_changed",
  "conversation.priority_changed",
  "conversation.team_changed",
  "reply.channel_switched",
  "routing.rule_fired",
  "routing.escalated",
  "sla.breached",
]);

const root = qs("[data-thread]");

class Thread {
  constructor(node) {
    this.root = node;
    this.list = qs("[data-thread-list]", node);
    this.status = qs("[data-thread-status]", node);
    this.conversationId = node.dataset.conversationId;
    this.contactId = node.dataset.contactId;
    this.channelId = node.dataset.channelId;
    this.messages = new Map(); // id → message
    this.nodes = new Map(); // entry key → node
    this.rendered = new Map(); // entry key → what was rendered (JSON), to skip unchanged
    this.activities = [];
    this.switched = new Map(); // message id → the channel it went out on
    this.contact = null;
    this.contactLoaded = null; // the contact's fetch, started with the page
    this.loading = null;
  }

  start() {
    on(this.root, "click", "[data-action]", (event, target) => this.#action(event, target));
    live.on("message.created", (data) => this.#mine(data) && this.refresh(false));
    live.on("message.updated", (data) => this.#mine(data) && this.refresh(true));
    live.on("message.delivery", (data) => this.#mine(data) && this.#delivery(data));
    live.on("conversation.updated", (data) => this.#mine(data) && this.#activities().then(() => this.#draw()));
    live.on("reply.channel_switched", (data) => this.#mine(data) && this.#activities().then(() => this.#draw()));
    live.on("resync", () => this.refresh(true));
    live.viewing(this.conversationId);
    live.connect();
    // The first drawing waits for the contact too (fetched alongside): drawn without it,
    // every message would be built again when it came, email frames included.
    this.contactLoaded = contactOf(this.contactId)
      .then((contact) => {
        this.contact = contact;
      })
      .catch(() => {});
    this.refresh(true);
  }

  #mine(data) {
    return data?.conversation_id === this.conversationId;
  }

  /** Fetch messages (all of them, or only those after the newest known) and activities. */
  refresh(all) {
    if (this.loading) {
      this.again = this.again || all || "new";
      return this.loading;
    }
    this.loading = Promise.all([this.#messages(all), this.#activities(), this.contactLoaded])
      .then(() => {
        setText(this.status, "");
        this.status.hidden = true;
        this.#draw();
      })
      .catch((err) => {
        this.status.hidden = false;
        setText(this.status, t("The messages could not be loaded. They are fetched again when the connection returns."));
        console.warn("thread: loading failed", err);
      })
      .finally(() => {
        this.loading = null;
        const again = this.again;
        this.again = null;
        if (again) this.refresh(again === true);
      });
    return this.loading;
  }

  async #messages(all) {
    let after = null;
    if (!all) for (const m of this.messages.values()) after = Math.max(after ?? 0, m.seq);
    const seen = new Map(all ? [] : this.messages);
    let cursor = null;
    do {
      const query = { limit: PAGE, cursor };
      if (after !== null && !cursor) query.after_seq = after;
      const page = await api.get(`/conversations/${this.conversationId}/messages`, query);
      for (const message of page.items) seen.set(message.id, message);
      cursor = page.next_cursor;
    } while (cursor);
    this.messages = seen;
  }

  async #activities() {
    const found = [];
    const switched = new Map();
    let cursor = null;
    for (let n = 0; n < TIMELINE_PAGES; n += 1) {
      const page = await api.get(`/contacts/${this.contactId}/timeline`, { limit: PAGE, cursor });
      for (const event of page.items) {
        if (event.conversation_id !== this.conversationId) continue;
        if (event.kind === "reply.channel_switched" && event.data?.message_id) {
          switched.set(event.data.message_id, event.data.to_channel_id);
        }
        if (ACTIVITY_KINDS.has(event.kind)) found.push(event);
      }
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    this.activities = found;
    this.switched = switched;
  }

  /** Put every entry in order, building only what changed (open frames stay as they are). */
  #draw(force = false) {
    const atBottom = this.#nearBottom();
    const entries = [
      ...[...this.messages.values()].map((m) => ({ key: `m:${m.id}`, at: m.arrived_at, seq: m.seq, value: m, kind: "message" })),
      ...this.activities.map((a) => ({ key: `a:${a.id}`, at: a.occurred_at, seq: -1, value: a, kind: "activity" })),
    ].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.seq - b.seq));
    const wanted = new Set(entries.map((e) => e.key));
    for (const [key, node] of this.nodes) {
      if (!wanted.has(key)) {
        node.remove();
        this.nodes.delete(key);
        this.rendered.delete(key);
      }
    }
    entries.forEach((entry, index) => {
      const signature = JSON.stringify(entry.value) + (this.contact ? "c" : "");
      let node = this.nodes.get(entry.key);
      if (!node || force || this.rendered.get(entry.key) !== signature) {
        const fresh = entry.kind === "message" ? this.#message(entry.value) : this.#activity(entry.value);
        if (node) node.replaceWith(fresh);
        node = fresh;
        this.nodes.set(entry.key, node);
        this.rendered.set(entry.key, signature);
      }
      const current = this.list.children[index];
      if (current !== node) this.list.insertBefore(node, current ?? null);
    });
    if (!entries.length) {
      this.status.hidden = false;
      setText(this.status, t("No messages yet."));
    }
    if (atBottom || this.firstDraw !== true) {
      this.firstDraw = true;
      this.#toBottom();
    }
  }

  #nearBottom() {
    const box = this.root;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  #toBottom() {
    this.root.scrollTop = this.root.scrollHeight;
  }

  // --- one message ----------------------------------------------------------------------

  #message(m) {
    const note = m.kind === "note" || m.private;
    const outbound = m.direction === "out";
    const side = note ? "note" : outbound ? "out" : "in";
    const item = el("li", {
      class: "msg",
      id: `message-${m.id}`,
      dataset: { side, messageId: m.id, state: m.delivery?.state ?? "" },
    });
    const channel = channelOf(this.switched.get(m.id) ?? m.channel_id ?? this.channelId);
    const head = el(
      "div",
      { class: "msg__head" },
      channel ? el("span", { class: "msg__channel", title: channel.name }, icon(channel.icon, channel.name)) : null,
      this.#sender(m, note, outbound),
      note ? el("span", { class: "badge badge--note" }, icon("lock"), t("Private note")) : null,
      this.#time(m, outbound || note),
    );
    const bubble = el("div", { class: "msg__bubble" });
    if (m.subject) bubble.append(el("p", { class: "msg__subject", dir: "auto" }, m.subject));
    bubble.append(this.#body(m, note));
    if (m.html) bubble.append(this.#formatted(m));
    if (m.attachments?.length) bubble.append(this.#attachments(m));
    item.append(head, bubble);
    if (m.edited_at) item.append(el("p", { class: "msg__foot muted" }, t("Edited")));
    if (m.delivery) item.append(this.#delivery_line(m));
    return item;
  }

  #sender(m, note, outbound) {
    const name = el("span", { class: "msg__sender", dir: "auto" });
    if (outbound || note) {
      setText(name, m.author_id ? "…" : t("Switchboard"));
      if (m.author_id) userName(m.author_id).then((n) => setText(name, n ?? t("A former user")));
    } else {
      setText(name, this.contact?.name || this.contact?.identities?.[0]?.value || t("Customer"));
    }
    return name;
  }

  #time(m, ours) {
    const time = fillTime(el("time", { class: "msg__time" }), m.sent_at);
    const zone = this.contact?.timezone;
    if (!zone) return time;
    let local;
    try {
      local = clockTime(m.sent_at, zone);
    } catch {
      return time;
    }
    time.title = `${absoluteTime(m.sent_at)} · ${t("{time} for the customer ({zone})", { time: absoluteTime(m.sent_at, zone), zone })}`;
    return el(
      "span",
      { class: "msg__times" },
      time,
      ours ? null : el("span", { class: "msg__local muted", title: zone }, t("{time} their time", { time: local })),
    );
  }

  #body(m, note) {
    const full = m.text ?? "";
    const short = m.reply_text && m.reply_text.trim() && m.reply_text.trim() !== full.trim() ? m.reply_text : null;
    // Mention tokens are an agent's: only notes show them as chips (a customer's "@[…](user:…)"
    // stays the text it is).
    const nodes = (value) => (note ? mentionNodes(value) : [value]);
    const text = el("div", { class: "msg__text", dir: "auto" }, ...nodes(short ?? full));
    if (!short) return text;
    const box = el("div", { class: "msg__body", dataset: { folded: "true" } }, text);
    box.append(
      el(
        "button",
        { type: "button", class: "link-button msg__fold", dataset: { action: "toggle-quote" }, aria: { expanded: "false" } },
        t("Show quoted text"),
      ),
    );
    box.full = nodes(full);
    box.short = nodes(short);
    return box;
  }

  #formatted(m) {
    const remote = m.html.includes("data-remote-src");
    const box = el("div", { class: "msg__formatted", dataset: { open: "false" } });
    const bar = el(
      "div",
      { class: "msg__formatted-bar" },
      el(
        "button",
        { type: "button", class: "link-button", dataset: { action: "toggle-formatted" }, aria: { expanded: "false" } },
        t("Show formatted email"),
      ),
      remote
        ? el(
            "button",
            { type: "button", class: "link-button", hidden: true, dataset: { action: "show-images" } },
            t("Show images"),
          )
        : null,
      remote ? el("span", { class: "muted msg__blocked", hidden: true }, t("Remote images are blocked.")) : null,
    );
    box.append(bar);
    return box;
  }

  #attachments(m) {
    const list = el("ul", { class: "files", role: "list", aria: { label: t("Attachments") } });
    for (const file of m.attachments) {
      const url = `/api/v1/attachments/${file.id}`;
      const name = file.filename || t("Unnamed file");
      const type = (file.content_type || "").split(";")[0].trim().toLowerCase();
      const preview = IMAGE_PREVIEW.has(type)
        ? el("img", { class: "file__preview", src: `${url}?inline=1`, alt: name, loading: "lazy" })
        : el("span", { class: "file__type", aria: { hidden: "true" } }, badge(type, file.filename));
      list.append(
        el(
          "li",
          { class: "file" },
          el(
            "a",
            { class: "file__link", href: url, download: "", title: t("Download {name}", { name }) },
            preview,
            el(
              "span",
              { class: "file__about" },
              el("bdi", { class: "file__name", dir: "auto" }, name),
              el("span", { class: "file__meta muted" }, `${fileSize(file.size)} · ${type || "?"}`),
            ),
            el("span", { class: "file__download" }, icon("download")),
          ),
        ),
      );
    }
    return list;
  }

  #delivery_line(m) {
    const { state, error } = m.delivery;
    const line = el("div", { class: "msg__delivery", dataset: { state } });
    const labels = {
      queued: t("Queued"),
      sending: t("Sending"),
      failed_temporary: t("Retrying"),
      sent: t("Sent"),
      delivered: t("Delivered"),
      read: t("Read"),
      failed_permanent: t("Not delivered"),
    };
    const label = labels[state] ?? state;
    const ticks = el("span", { class: "ticks", dataset: { ticks: state }, title: label, role: "img", aria: { label } });
    if (state === "sent") ticks.append(icon("check"));
    else if (state === "delivered" || state === "read") ticks.append(icon("check"), icon("check"));
    else if (state === FAILED || state === "failed_temporary") ticks.append(icon("alert"));
    else ticks.append(icon("clock")); // queued or sending
    line.append(ticks, el("span", { class: "msg__state" }, label));
    if (state === FAILED || state === "failed_temporary") {
      if (error) line.append(el("span", { class: "msg__error", dir: "auto" }, error));
    }
    if (state === FAILED) {
      line.append(
        el("button", { type: "button", class: "button button--small", dataset: { action: "retry" } }, icon("retry"), t("Retry")),
      );
    }
    return line;
  }

  #delivery(data) {
    const message = this.messages.get(data.message_id);
    if (!message) {
      this.refresh(false);
      return;
    }
    message.delivery = { state: data.state, error: data.error ?? null };
    this.#draw();
  }

  // --- activity lines -------------------------------------------------------------------

  #activity(event) {
    const text = el("span", { class: "activity__text", dir: "auto" }, describe(event));
    const item = el("li", { class: "activity", dataset: { kind: event.kind } }, text);
    if (event.kind === "conversation.assigned" && event.data?.to) {
      userName(event.data.to).then((n) => n && setText(text, t("Assigned to {name}", { name: n })));
    }
    const by = event.data?.by ?? event.data?.actor_id;
    if (by) {
      const who = el("span", { class: "activity__by", dir: "auto" });
      userName(by).then((n) => n && setText(who, n));
      item.append(who);
    }
    item.append(fillTime(el("time", { class: "activity__time" }), event.occurred_at));
    return item;
  }

  // --- actions --------------------------------------------------------------------------

  async #action(event, target) {
    const item = target.closest(".msg");
    const id = item?.dataset.messageId;
    switch (target.dataset.action) {
      case "toggle-quote": {
        const box = target.closest(".msg__body");
        const folded = box.dataset.folded === "true";
        box.dataset.folded = String(!folded);
        replaceChildren(qs(".msg__text", box), ...(folded ? box.full : box.short));
        target.setAttribute("aria-expanded", String(folded));
        setText(target, folded ? t("Hide quoted text") : t("Show quoted text"));
        break;
      }
      case "toggle-formatted":
        this.#toggleFrame(target, id);
        break;
      case "show-images": {
        const frame = qs("iframe", item);
        if (frame) frame.src = `/messages/${id}/frame?images=1`;
        target.hidden = true;
        const note = qs(".msg__blocked", item);
        if (note) note.hidden = true;
        break;
      }
      case "retry":
        target.disabled = true;
        try {
          const updated = await api.post(`/messages/${id}/retry`);
          this.messages.set(updated.id, updated);
          this.#draw();
        } catch (err) {
          target.disabled = false;
          const line = target.closest(".msg__delivery");
          qs(".msg__retry-error", line)?.remove();
          line.append(el("span", { class: "msg__retry-error", role: "alert" }, t("The retry failed: {reason}", { reason: err.message })));
        }
        break;
    }
  }

  #toggleFrame(button, id) {
    const box = button.closest(".msg__formatted");
    const open = box.dataset.open === "true";
    box.dataset.open = String(!open);
    button.setAttribute("aria-expanded", String(!open));
    setText(button, open ? t("Show formatted email") : t("Hide formatted email"));
    const images = qs("[data-action=show-images]", box);
    const blocked = qs(".msg__blocked", box);
    if (open) {
      qs(".msg__frame", box)?.remove();
      if (images) images.hidden = true;
      if (blocked) blocked.hidden = true;
      return;
    }
    // No allow-scripts, no allow-same-origin: the email runs nothing and is not us.
    const frame = el("iframe", {
      class: "msg__frame",
      src: `/messages/${id}/frame`,
      sandbox: "allow-popups allow-popups-to-escape-sandbox",
      referrerpolicy: "no-referrer",
      title: t("The email as its sender formatted it"),
    });
    box.append(el("div", { class: "msg__frame-box" }, frame));
    if (images) images.hidden = false;
    if (blocked) blocked.hidden = false;
  }
}

/** A short type label for a file: PDF, ZIP, IMG… */
function badge(type, filename) {
  const extension = (filename ?? "").includes(".") ? filename.split(".").pop() : "";
  if (/^[a-z0-9]{1,4}$/i.test(extension)) return extension.toUpperCase();
  if (type.startsWith("image/")) return "IMG";
  if (type.startsWith("audio/")) return "AUD";
  if (type.startsWith("video/")) return "VID";
  return "FILE";
}

function statusName(status) {
  return (
    { open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), resolved: t("Resolved") }[status] ?? status
  );
}

/** The line of an activity, in words. */
function describe(event) {
  const data = event.data ?? {};
  switch (event.kind) {
    case "conversation.assigned":
      if (!data.to) return t("Assignee removed");
      return t("Assigned");
    case "conversation.status_changed":
      return t("Status changed to {status}", { status: statusName(data.to ?? data.status) });
    case "conversation.labels_changed": {
      const parts = [];
      if (data.added?.length) parts.push(t("Labels added: {labels}", { labels: data.added.join(", ") }));
      if (data.removed?.length) parts.push(t("Labels removed: {labels}", { labels: data.removed.join(", ") }));
      return parts.join(" · ") || t("Labels changed");
    }
    case "conversation.priority_changed":
      return t("Priority changed to {priority}", { priority: data.to ?? "" });
    case "conversation.team_changed":
      return data.to ? t("Team changed") : t("Team removed");
    case "reply.channel_switched": {
      const channel = channelOf(data.to_channel_id);
      return t("Reply sent on another channel: {channel}", { channel: channel?.name ?? "?" });
    }
    case "routing.rule_fired":
      return t("Routing rule applied: {name}", { name: data.rule_name ?? "" });
    case "routing.escalated":
      return t("Escalated");
    case "sla.breached":
      return t("Response time target missed");
    default:
      return event.kind;
  }
}

if (root) new Thread(root).start();
