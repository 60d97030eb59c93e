// The list header's search: contacts (name, identities) and messages (text) through
// GET /api/v1/search, shown in place of the list while the box holds a query.
import { api } from "../api.js";
import { el, on, qs, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { fillTime } from "../time.js";
import { avatar, channelIcon, conversationHref } from "./row.js";

const DEBOUNCE_MS = 250;

/** `text` with the first case-insensitive match of `needle` in a <mark> (text nodes only). */
function highlighted(text, needle) {
  const lower = text.toLocaleLowerCase();
  const at = lower.length === text.length ? lower.indexOf(needle.toLocaleLowerCase()) : -1;
  if (at < 0 || !needle) return [text];
  return [text.slice(0, at), el("mark", {}, text.slice(at, at + needle.length)), text.slice(at + needle.length)];
}

function contactHit(hit, needle, viewKey) {
  const name = hit.name || hit.identities[0]?.split(":").slice(1).join(":") || t("Unnamed customer");
  const body = [
    avatar(name),
    el(
      "span",
      { class: "hit__body" },
      el("span", { class: "hit__title", dir: "auto" }, ...highlighted(name, needle)),
      el("span", { class: "hit__detail", dir: "auto" }, hit.identities.map((i) => i.split(":").slice(1).join(":")).join(" · ")),
    ),
  ];
  const href = hit.conversation_id ? conversationHref(hit.conversation_id, viewKey) : null;
  return el("li", {}, href ? el("a", { class: "hit", href }, ...body) : el("span", { class: "hit" }, ...body));
}

function messageHit(hit, needle, viewKey) {
  const time = el("time", { class: "conv__time" });
  fillTime(time, hit.arrived_at);
  const prefix = hit.private ? t("Note:") : hit.direction === "out" ? t("Replied:") : null;
  return el(
    "li",
    {},
    el(
      "a",
      { class: "hit hit--message", href: conversationHref(hit.conversation_id, viewKey) },
      el(
        "span",
        { class: "hit__body" },
        el(
          "span",
          { class: "conv__top" },
          el("span", { class: "hit__title conv__name", dir: "auto" }, hit.contact_name || t("Unnamed customer")),
          channelIcon(hit.channel_kind),
          time,
        ),
        el(
          "span",
          { class: "hit__detail hit__text" },
          prefix ? el("span", { class: "conv__prefix" }, prefix) : null,
          el("span", { dir: "auto" }, ...highlighted(hit.text, needle)),
        ),
      ),
    ),
  );
}

/**
 * Wire the search box of `root`. `onMode(searching)` is told when the list gives way to
 * results and back.
 */
export function setupSearch(root, { viewKey, onMode }) {
  const form = qs("[data-search-form]", root);
  const input = qs("[data-search-input]", root);
  const results = qs("[data-search-results]", root);
  const status = qs("[data-search-status]", root);
  let timer = null;
  let controller = null;

  function show(kind, hits, needle) {
    const section = qs(`[data-search-section=${kind}]`, results);
    const list = qs(`[data-search-list=${kind}]`, results);
    section.hidden = hits.length === 0;
    replaceChildren(list, hits.map((hit) => (kind === "contacts" ? contactHit(hit, needle, viewKey) : messageHit(hit, needle, viewKey))));
  }

  async function run() {
    const needle = input.value.trim();
    controller?.abort();
    if (!needle) {
      results.hidden = true;
      onMode(false);
      return;
    }
    results.hidden = false;
    onMode(true);
    setText(status, t("Searching…"));
    controller = new AbortController();
    try {
      const found = await api.get("/search", { q: needle }, { signal: controller.signal });
      show("contacts", found.contacts, needle);
      show("messages", found.messages, needle);
      const none = found.contacts.length === 0 && found.messages.length === 0;
      setText(status, none ? t("Nothing matches “{q}”.", { q: needle }) : t("Results for “{q}”", { q: needle }));
    } catch (err) {
      if (err.name === "AbortError") return;
      setText(status, t("The search failed. Try again."));
    }
  }

  function clear() {
    input.value = "";
    run();
  }

  on(input, "input", () => {
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  });
  on(form, "submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    run();
  });
  on(input, "keydown", (event) => {
    if (event.key === "Escape" && input.value) {
      event.preventDefault();
      clear();
    } else if (event.key === "ArrowDown") {
      const first = qs("a.hit", results);
      if (first && !results.hidden) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  return { focus: () => input.focus(), clear, get active() { return !results.hidden; } };
}
