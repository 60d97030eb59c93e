// What the thread and the contact panel both need: the conversation's contact, user
// names (GET /api/v1/users/{id}, cached) and the channels the user sees (from the page).
import { api } from "../api.js";
import { pageData } from "../dom.js";

const users = new Map();
let contact = null;

/** The conversation's contact (GET /contacts/{id}), fetched once per page; `fresh` refetches. */
export function contactOf(contactId, fresh = false) {
  if (!contact || fresh) contact = api.get(`/contacts/${contactId}`);
  return contact;
}

/** A user's display name (their name, else email); null while unknown. */
export function userName(userId) {
  if (!userId) return Promise.resolve(null);
  if (!users.has(userId)) {
    users.set(
      userId,
      api.get(`/users/${userId}`).then((user) => user.name || user.email).catch(() => null),
    );
  }
  return users.get(userId);
}

const channels = new Map((pageData("thread-channels") ?? []).map((c) => [c.id, c]));

/** {id, name, icon} of a channel the user sees, or null. */
export function channelOf(channelId) {
  return channels.get(channelId) ?? null;
}

/** "12 KB", "1.4 MB". */
export function fileSize(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || size >= 10 ? 0 : 1;
  return `${new Intl.NumberFormat(document.documentElement.lang || "en", { maximumFractionDigits: digits }).format(size)} ${units[unit]}`;
}
