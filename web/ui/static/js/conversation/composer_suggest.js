// The composer's suggestion popup: canned responses after "/" (any mode) and people
// after "@" (notes only), filtered as the agent types. The textarea keeps the focus
// (a combobox: aria-activedescendant); ↑/↓ move, Enter or Tab pick, Escape closes.
import { el, on, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";

// A trigger at the start of the text or after a space, up to the caret.
const CANNED = /(^|\s)\/([^\s/]{0,40})$/u;
const MENTION = /(^|\s)@([^\s@[\]()]{0,40})$/u;
const DEBOUNCE_MS = 120;

export class Suggestions {
  #text;
  #popup;
  #source;
  #items = [];
  #active = 0;
  #kind = null; // "canned" | "people" | null
  #start = 0; // where the trigger character sits in the text
  #timer = null;
  #blurred = null; // closing after the textarea lost the focus (cancelled if it comes back)
  #abort = null;

  constructor(text, popup, source) {
    this.#text = text;
    this.#popup = popup;
    this.#source = source;
    if (!text) return;
    on(text, "input", () => this.#schedule());
    on(text, "click", () => this.#schedule());
    on(text, "keydown", (event) => this.#key(event));
    on(text, "blur", () => {
      this.#blurred = setTimeout(() => this.close(), 150);
    });
    on(text, "focus", () => clearTimeout(this.#blurred));
    // Pick with the mouse without taking the focus from the textarea.
    on(popup, "mousedown", "[role=option]", (event) => event.preventDefault());
    on(popup, "click", "[role=option]", (event, option) => this.#pick(Number(option.dataset.index)));
  }

  get open() {
    return !this.#popup.hidden;
  }

  close() {
    clearTimeout(this.#timer);
    this.#abort?.abort();
    this.#kind = null;
    this.#items = [];
    this.#popup.hidden = true;
    this.#text.setAttribute("aria-expanded", "false");
    this.#text.removeAttribute("aria-activedescendant");
  }

  #schedule() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#lookup(), DEBOUNCE_MS);
  }

  async #lookup() {
    const before = this.#text.value.slice(0, this.#text.selectionStart);
    const canned = CANNED.exec(before);
    const mention = this.#source.modeOf() === "note" ? MENTION.exec(before) : null;
    const match = canned ?? mention;
    if (!match) {
      this.close();
      return;
    }
    const kind = canned ? "canned" : "people";
    const query = match[2];
    this.#start = match.index + match[1].length;
    this.#abort?.abort();
    const abort = new AbortController();
    this.#abort = abort;
    let items;
    try {
      items = kind === "canned" ? await this.#source.canned(query, abort.signal) : await this.#source.people(query);
    } catch (err) {
      if (err.name !== "AbortError") this.close();
      return;
    }
    if (abort.signal.aborted) return;
    this.#kind = kind;
    this.#items = items;
    this.#active = 0;
    this.#show(query);
  }

  #show(query) {
    const options = this.#items.map((item, index) =>
      this.#kind === "canned"
        ? el("li", { id: `composer-option-${index}`, role: "option", class: "suggestion", "data-index": index },
            el("span", { class: "suggestion__code", dir: "auto" }, `/${item.short_code}`),
            el("span", { class: "suggestion__title", dir: "auto" }, item.title),
            el("span", { class: "suggestion__preview muted", dir: "auto" }, item.text.slice(0, 140)))
        : el("li", { id: `composer-option-${index}`, role: "option", class: "suggestion", "data-index": index },
            el("span", { class: "presence-dot", "data-presence": item.presence, "aria-hidden": "true" }),
            el("span", { class: "suggestion__title", dir: "auto" }, item.name),
            el("span", { class: "suggestion__preview muted", dir: "auto" }, item.email)),
    );
    const heading = this.#kind === "canned" ? t("Canned responses") : t("Mention someone");
    const empty = this.#kind === "canned"
      ? t("No canned response matches “{query}”", { query })
      : t("Nobody who can see this conversation matches “{query}”", { query });
    replaceChildren(
      this.#popup,
      el("li", { class: "suggestion__heading", role: "presentation" }, heading),
      ...(options.length ? options : [el("li", { class: "suggestion__empty muted", role: "presentation" }, empty)]),
    );
    this.#popup.hidden = false;
    this.#text.setAttribute("aria-expanded", "true");
    this.#highlight();
  }

  #highlight() {
    for (const option of this.#popup.querySelectorAll("[role=option]")) {
      const active = Number(option.dataset.index) === this.#active;
      option.setAttribute("aria-selected", String(active));
      if (active) option.scrollIntoView({ block: "nearest" });
    }
    if (this.#items.length) this.#text.setAttribute("aria-activedescendant", `composer-option-${this.#active}`);
    else this.#text.removeAttribute("aria-activedescendant");
  }

  #key(event) {
    if (!this.open) return;
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.close();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (event.altKey || !this.#items.length) return;
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.#active = (this.#active + step + this.#items.length) % this.#items.length;
      this.#highlight();
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.ctrlKey && !event.metaKey && this.#items.length) {
      event.preventDefault();
      this.#pick(this.#active);
    }
  }

  async #pick(index) {
    const item = this.#items[index];
    const kind = this.#kind;
    if (!item) return;
    const start = this.#start;
    const end = this.#text.selectionStart;
    this.close();
    let insert;
    if (kind === "canned") {
      try {
        insert = await this.#source.render(item);
      } catch (err) {
        this.#source.failed(err.message || t("The canned response could not be inserted."));
        return;
      }
    } else {
      insert = `@${this.#source.mentioned(item)} `;
    }
    const value = this.#text.value;
    this.#text.value = value.slice(0, start) + insert + value.slice(end);
    const caret = start + insert.length;
    this.#text.setSelectionRange(caret, caret);
    this.#text.focus();
    this.#text.dispatchEvent(new Event("input", { bubbles: true }));
    setText(this.#popup, "");
  }
}
