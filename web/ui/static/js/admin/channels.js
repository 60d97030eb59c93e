// The channels list and a channel's page: times shown relative, pause and resume through
// PATCH /channels/{id}, copy buttons for webhook URLs. Every label is rendered by the
// server; the script only flips data-paused (CSS shows the matching badge and button).
// Health, last sync and paused follow live: on news of a channel the page is fetched
// again and those parts ([data-live], data-paused) taken from it, so they read exactly
// as the server renders them, in the user's language.
import { api } from "../api.js";
import { on, qs, qsa, setText } from "../dom.js";
import { live } from "../live.js";
import { fillTime } from "../time.js";

const REFRESH_DELAY_MS = 250; // a burst of news (a parked channel's jobs) is one fetch

function fillTimes(root) {
  for (const node of qsa("time[data-time]", root)) fillTime(node, node.dateTime);
}

fillTimes(document);

async function refresh() {
  const response = await fetch(window.location.href, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
  });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const node of qsa("[data-live]")) {
    const twin = fresh.getElementById(node.id);
    if (!twin) continue;
    node.replaceChildren(...[...twin.childNodes].map((child) => document.importNode(child, true)));
    fillTimes(node);
  }
  const paused = new Map(
    [...fresh.querySelectorAll("[data-channel-id]")].map((n) => [n.dataset.channelId, n.dataset.paused]),
  );
  for (const node of qsa("[data-channel-id]")) {
    const state = paused.get(node.dataset.channelId);
    if (state !== undefined) node.dataset.paused = state;
  }
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), REFRESH_DELAY_MS);
}

const shown = (data) => qsa("[data-channel-id]").some((n) => n.dataset.channelId === data.channel_id);
for (const type of ["channel_health.changed", "channel.updated"]) {
  live.on(type, (data) => shown(data) && refreshSoon());
}
live.on("resync", refreshSoon);

const notice = qs("#channels-notice");

on(document, "click", "[data-action=pause], [data-action=resume]", async (event, button) => {
  const holder = button.closest("[data-channel-id]");
  const id = holder.dataset.channelId;
  const paused = button.dataset.action === "pause";
  button.disabled = true;
  setText(notice, "");
  try {
    const channel = await api.patch(`/channels/${id}`, { paused });
    for (const node of qsa("[data-channel-id]")) {
      if (node.dataset.channelId === id) node.dataset.paused = String(channel.paused);
    }
    // The button pressed is hidden now: keep the keyboard on its counterpart.
    const counterpart = channel.paused ? "resume" : "pause";
    holder.querySelector(`[data-action=${counterpart}]`)?.focus();
  } catch (err) {
    setText(notice, notice.dataset.failed);
  } finally {
    button.disabled = false;
  }
});

on(document, "click", "[data-copy]", async (event, button) => {
  const value = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(value.textContent.trim());
  } catch {
    // No clipboard (an insecure origin, a refused permission): select it to copy by hand.
    window.getSelection().selectAllChildren(value);
    return;
  }
  setText(button, button.dataset.copied);
  button.dataset.done = "";
  setTimeout(() => {
    setText(button, button.dataset.label);
    delete button.dataset.done;
  }, 2000);
});
