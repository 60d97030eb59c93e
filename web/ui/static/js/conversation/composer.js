// The composer (templates/conversation/composer.html): a reply to the customer or a
// private note, on a channel the contact can be reached on, with canned responses ("/"),
// @mentions in notes, attachments, and the keyboard (Ctrl/Cmd+Enter sends, Alt+N switches
// reply/note). Sends POST /api/v1/conversations/{id}/messages with one Idempotency-Key
// per message, so a double click or a retry after a network error sends it once.
import { api } from "../api.js";
import { el, on, qs, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";
import { acknowledge, conversationId, directory } from "./actions_state.js";
import { limitBroken, rememberChannels, showLimits } from "./composer_limits.js";
import { Suggestions } from "./composer_suggest.js";

const MAX_FILES = 10;
// Requests stop at 25 MB (settings.max_request_bytes); base64 makes files a third larger.
const MAX_TOTAL_BYTES = 18 * 1024 * 1024;
const TYPING_EVERY_MS = 3000; // at most one typing frame per 3 s
const TYPING_IDLE_MS = 4000; // no key for this long: stopped typing

const form = qs("[data-composer]");
const field = (name) => qs(`[data-field="${name}"]`, form);
const text = field("text");

let mode = "reply";
let files = [];
let sending = false;
let draftKey = null; // the Idempotency-Key of the message being written
const mentions = new Map(); // display name -> user id, of the mentions inserted

// --- reply or note ----------------------------------------------------------------------

function setMode(next) {
  mode = next;
  form.dataset.mode = next;
  for (const button of form.querySelectorAll(".segmented__item")) {
    const chosen = button.dataset.mode === next;
    button.setAttribute("aria-checked", String(chosen));
    button.tabIndex = chosen ? 0 : -1;
  }
  field("channel-box").hidden = next === "note";
  field("note-hint").hidden = next !== "note";
  text.placeholder = next === "note"
    ? t("Write a private note… Type @ to mention someone")
    : t("Write a reply… Type / for canned responses");
  setText(field("send-label"), next === "note" ? t("Add note") : t("Send"));
  setText(field("text-label"), next === "note" ? t("Private note") : t("Reply"));
  suggestions.close();
  updateLimits();
}

function updateLimits() {
  showLimits(field("count"), mode, field("channel").value, outgoingText());
}

export function toggleMode() {
  setMode(mode === "reply" ? "note" : "reply");
  text.focus();
}

// --- channels ---------------------------------------------------------------------------

async function loadChannels() {
  const select = field("channel");
  let answer;
  try {
    answer = await api.get(`/conversations/${conversationId}/reply-channels`);
  } catch {
    replaceChildren(select, el("option", { value: "" }, t("Channels could not be loaded")));
    return;
  }
  rememberChannels(answer.items);
  if (answer.items.length === 0) {
    replaceChildren(select, el("option", { value: "" }, t("No channel reaches this contact")));
    select.disabled = true;
    return;
  }
  replaceChildren(
    select,
    answer.items.map((item) =>
      el(
        "option",
        {
          value: item.channel_id,
          disabled: !item.reachable,
          selected: item.channel_id === answer.default_channel_id,
          "data-kind": item.kind,
        },
        item.reachable
          ? t("{channel} · {recipient}", { channel: item.name, recipient: item.recipient })
          : t("{channel} · unavailable: {reason}", { channel: item.name, reason: item.reason }),
      ),
    ),
  );
  select.disabled = false;
  updateLimits();
}

// --- attachments ------------------------------------------------------------------------

function formatSize(bytes) {
  const units = [t("{n} B"), t("{n} KB"), t("{n} MB")];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return units[unit].replace("{n}", new Intl.NumberFormat(document.documentElement.lang, { maximumFractionDigits: unit ? 1 : 0 }).format(value));
}

function showFiles() {
  replaceChildren(
    field("files"),
    files.map((file, index) =>
      el("li", { class: "file-chip" },
        el("span", { class: "file-chip__name", dir: "auto" }, file.name),
        el("span", { class: "muted" }, formatSize(file.size)),
        el("button", {
          class: "icon-button icon-button--small",
          type: "button",
          "data-action": "remove-file",
          "data-index": index,
          "aria-label": t("Remove {name}", { name: file.name }),
        }, "×"),
      ),
    ),
  );
  const total = files.reduce((sum, file) => sum + file.size, 0);
  setText(
    field("limits"),
    files.length
      ? t("{size} of {max}", { size: formatSize(total), max: formatSize(MAX_TOTAL_BYTES) })
      : t("Up to 10 files, 18 MB in all"),
  );
}

function addFiles(list) {
  const added = [...files, ...list];
  const total = added.reduce((sum, file) => sum + file.size, 0);
  if (added.length > MAX_FILES) {
    showErrors(t("At most {n} files per message.", { n: MAX_FILES }));
    return;
  }
  if (total > MAX_TOTAL_BYTES) {
    showErrors(t("Attachments may add up to {max}; these are {size}.", { max: formatSize(MAX_TOTAL_BYTES), size: formatSize(total) }));
    return;
  }
  files = added;
  showErrors("");
  showFiles();
}

function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener("load", () => resolve(String(reader.result).split(",", 2)[1] ?? ""));
    reader.addEventListener("error", () => reject(reader.error));
    reader.readAsDataURL(file);
  });
}

// --- mentions -----------------------------------------------------------------------------

/** The text to send: in a note, each inserted "@Name" becomes the mention token. */
function outgoingText() {
  let value = text.value;
  if (mode !== "note") return value;
  const names = [...mentions.keys()].sort((a, b) => b.length - a.length);
  for (const name of names) {
    value = value.split(`@${name}`).join(`@[${name}](user:${mentions.get(name)})`);
  }
  return value;
}

// --- errors -------------------------------------------------------------------------------

const FIELD_NAMES = () => ({
  text: t("Message"),
  channel_id: t("Channel"),
  attachments: t("Attachments"),
  canned_response_id: t("Canned response"),
  mentions: t("Mentions"),
});

async function fieldErrors(fields) {
  const people = await directory().catch(() => []);
  return Object.entries(fields).map(([key, message]) => {
    const [head, rest] = key.split(".", 2);
    if (head === "mentions" && rest) {
      const name = people.find((user) => user.id === rest)?.name ?? rest;
      return `@${name}: ${message}`;
    }
    return `${FIELD_NAMES()[head] ?? key}: ${message}`;
  });
}

function showErrors(message, invalidText = false) {
  const node = field("error");
  replaceChildren(node, ...(Array.isArray(message) ? message.map((line) => el("span", { class: "composer__error-line" }, line)) : [message]));
  form.dataset.invalid = String(Boolean(message && message.length));
  text.setAttribute("aria-invalid", String(invalidText));
}

// --- sending -------------------------------------------------------------------------------

function newKey() {
  return crypto.randomUUID();
}

export async function send() {
  if (sending) return; // a double click or Ctrl+Enter twice: one message
  const value = outgoingText();
  if (!value.trim() && files.length === 0) {
    showErrors(t("Write something first."), true);
    text.focus();
    return;
  }
  if (!value.trim()) {
    showErrors(t("Add a few words to go with the files."), true);
    text.focus();
    return;
  }
  const broken = mode === "reply" ? limitBroken(field("channel").value, value, files.length) : null;
  if (broken) {
    showErrors(broken, true);
    text.focus();
    return;
  }
  sending = true;
  form.dataset.sending = "true";
  field("send").setAttribute("aria-disabled", "true");
  draftKey ??= newKey();
  try {
    const body = { text: value, private: mode === "note" };
    const channel = field("channel").value;
    if (mode === "reply" && channel) body.channel_id = channel;
    if (files.length) {
      body.attachments = await Promise.all(
        files.map(async (file) => ({
          filename: file.name,
          content_type: file.type || "application/octet-stream",
          data: await base64Of(file),
        })),
      );
    }
    const message = await api.post(`/conversations/${conversationId}/messages`, body, {
      headers: { "Idempotency-Key": draftKey },
    });
    acknowledge(message.seq);
    text.value = "";
    files = [];
    mentions.clear();
    showFiles();
    updateLimits();
    showErrors("");
    draftKey = null;
    typing.stop();
    form.dataset.sent = String(Date.now());
  } catch (err) {
    if (err.status === 422 && Object.keys(err.fields ?? {}).length) {
      showErrors(await fieldErrors(err.fields), "text" in err.fields);
      draftKey = null; // the server stored nothing: a corrected message is a new one
    } else if (err.status === 413) {
      showErrors(t("The attachments are too large to send."));
      draftKey = null;
    } else if (err.name === "NetworkError") {
      showErrors(t("Not sent: no connection. Send again to retry."));
    } else {
      showErrors(err.message || t("Not sent. Try again."));
    }
  } finally {
    sending = false;
    form.dataset.sending = "false";
    field("send").removeAttribute("aria-disabled");
    text.focus();
  }
}

// --- typing signals --------------------------------------------------------------------------

const typing = {
  sent: false, // what the server last heard
  lastFrame: 0,
  idleTimer: null,
  laterTimer: null,
  frame(state) {
    clearTimeout(this.laterTimer);
    const wait = this.lastFrame + TYPING_EVERY_MS - Date.now();
    if (wait > 0) {
      // Throttled: the latest state goes out when the 3 s are up.
      this.laterTimer = setTimeout(() => this.frame(state), wait);
      return;
    }
    if (state === this.sent && !state) return;
    live.typing(conversationId, state);
    this.sent = state;
    this.lastFrame = Date.now();
  },
  keyed() {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), TYPING_IDLE_MS);
    if (!this.sent || Date.now() - this.lastFrame >= TYPING_EVERY_MS) this.frame(true);
  },
  stop() {
    clearTimeout(this.idleTimer);
    if (this.sent) this.frame(false);
    else clearTimeout(this.laterTimer);
  },
};

// --- suggestions: canned responses and mentions -----------------------------------------------

const suggestions = new Suggestions(text, field("popup"), {
  modeOf: () => mode,
  async canned(query, signal) {
    const page = await api.get("/canned-responses", { q: query || undefined, limit: 8 }, { signal });
    return page.items;
  },
  async people(query) {
    const needle = query.toLocaleLowerCase();
    const users = await directory();
    return users.filter((user) => user.name.toLocaleLowerCase().includes(needle)).slice(0, 8);
  },
  async render(item) {
    const rendered = await api.post(`/canned-responses/${item.id}/render`, { conversation_id: conversationId });
    return rendered.text;
  },
  mentioned(user) {
    const name = user.name.replace(/[[\]\r\n]/g, " ").replace(/\s+/g, " ").trim();
    mentions.set(name, user.id);
    return name;
  },
  failed(message) {
    showErrors(message);
  },
});

// --- events ------------------------------------------------------------------------------------

if (form && conversationId) {
  on(form, "submit", (event) => {
    event.preventDefault();
    send();
  });
  on(form, "click", ".segmented__item", (event, button) => setMode(button.dataset.mode));
  on(form, "keydown", ".segmented__item", (event) => {
    if (!["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(event.key)) return;
    event.preventDefault();
    toggleMode();
    qs(".segmented__item[aria-checked=true]", form).focus();
  });
  on(form, "click", "[data-action=remove-file]", (event, button) => {
    files.splice(Number(button.dataset.index), 1);
    showFiles();
    text.focus();
  });
  on(field("file-input"), "change", (event, input) => {
    addFiles([...input.files]);
    input.value = "";
  });
  on(text, "input", () => {
    typing.keyed();
    if (form.dataset.invalid === "true") showErrors("");
    updateLimits();
  });
  on(field("channel"), "change", updateLimits);
  on(text, "blur", () => typing.stop());
  on(document, "keydown", (event) => {
    if (event.defaultPrevented) return;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && form.contains(document.activeElement)) {
      event.preventDefault();
      send();
    } else if (event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey && event.code === "KeyN") {
      event.preventDefault();
      toggleMode();
    }
  });
  setMode("reply");
  showFiles();
  loadChannels();
}
