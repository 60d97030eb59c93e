// The channels list and a channel's page: times shown relative, pause and resume through
// PATCH /channels/{id}, copy buttons for webhook URLs. Every label is rendered by the
// server; the script only flips data-paused (CSS shows the matching badge and button).
import { api } from "../api.js";
import { on, qs, qsa, setText } from "../dom.js";
import { fillTime } from "../time.js";

for (const node of qsa("time[data-time]")) fillTime(node, node.dateTime);

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
