// Moving between conversations of the current view (J/K, Alt+↓/↑) and the snooze presets.
import { api } from "../api.js";
import { qs } from "../dom.js";
import { conversationId } from "./actions_state.js";

const PAGE = 100;

/**
 * Open the next (`step` 1) or previous (-1) conversation of the current view: the view's
 * query is on the sidebar (`.sidebar__views[data-query]`, web/ui/README.md), ordered as the
 * API lists it. A conversation no longer in the view (just resolved) goes to its first.
 */
export async function nextConversation(step) {
  const views = qs(".sidebar__views");
  const query = JSON.parse(views?.dataset.query || "{}");
  const viewKey = views?.dataset.view;
  const page = await api.get("/conversations", { ...query, limit: PAGE });
  const ids = page.items.map((item) => item.id);
  const here = ids.indexOf(conversationId);
  const target = here === -1 ? ids.find((id) => id !== conversationId) : ids[here + step];
  if (!target) return false;
  const suffix = viewKey ? `?view=${encodeURIComponent(viewKey)}` : "";
  window.location.assign(`/conversations/${target}${suffix}`);
  return true;
}

/** When a snooze preset ends, in the browser's (the user's) time zone. */
export function snoozePreset(preset, now = new Date()) {
  const at = new Date(now);
  if (preset === "hour") return new Date(now.getTime() + 60 * 60 * 1000);
  if (preset === "tomorrow") {
    at.setDate(at.getDate() + 1);
  } else {
    // Next week: the coming Monday (a week from today if today is Monday).
    const days = ((8 - at.getDay()) % 7) || 7;
    at.setDate(at.getDate() + days);
  }
  at.setHours(9, 0, 0, 0);
  return at;
}
