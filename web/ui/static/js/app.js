// The entry module of signed-in pages: opens the live connection and runs the shell's
// controls (connection state, presence toggle, the views drawer at phone width, the user
// menu). Panes add their own modules in the template's `scripts` block and import
// `live`, `api`, `t` from here or from their own modules: same URL, same instance.
import { on, qs, setText } from "./dom.js";
import { t } from "./i18n.js";
import { live } from "./live.js";

const app = qs(".app");

function showConnection(state) {
  const node = qs("[data-connection]");
  if (!node) return;
  node.dataset.connection = state;
  const labels = { connecting: t("Connecting…"), open: t("Connected"), offline: t("Offline") };
  setText(qs(".connection__text", node), labels[state] ?? state);
}

function showPresence(status) {
  const button = qs("[data-action=toggle-presence]");
  if (!button) return;
  button.dataset.status = status;
  button.setAttribute("aria-pressed", String(status === "online"));
  setText(qs(".presence__text", button), status === "online" ? t("Online") : t("Away"));
  button.title = status === "online" ? t("Set yourself away") : t("Set yourself online");
}

function setSidebar(open) {
  app.dataset.sidebar = open ? "open" : "closed";
  qs("[data-action=toggle-sidebar]")?.setAttribute("aria-expanded", String(open));
}

if (app) {
  live.on("state", showConnection);
  live.on("presence", (presence) => {
    if (live.userId && presence.has(live.userId)) showPresence(presence.get(live.userId));
  });
  on(document, "click", "[data-action=toggle-presence]", () => {
    const next = live.ownPresence === "online" ? "away" : "online";
    live.setPresence(next);
    showPresence(next);
  });
  on(document, "click", "[data-action=toggle-sidebar]", () => setSidebar(app.dataset.sidebar !== "open"));
  on(document, "keydown", (event) => {
    if (event.key !== "Escape") return;
    if (app.dataset.sidebar === "open") setSidebar(false);
    const menu = qs("details.menu[open]");
    if (menu) {
      menu.open = false;
      qs("summary", menu).focus();
    }
  });
  // A click outside the user menu closes it.
  on(document, "click", (event) => {
    const menu = qs("details.menu[open]");
    if (menu && !menu.contains(event.target)) menu.open = false;
  });
  // Signing out ends the session, which closes the socket with 4401: that must not send
  // the page to the login form with a `next` before the sign-out's own answer does.
  on(document, "submit", "form[action='/logout']", () => live.close());
  showPresence("online");
  live.connect();
  const conversationId = app.dataset.conversationId;
  if (conversationId) live.viewing(conversationId);
}

export { app, live };
