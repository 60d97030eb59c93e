// What the conversation header and the composer share: the open conversation as the API
// last answered it, the people who can see its channel (the directory), and changes
// through PATCH /api/v1/conversations/{id}. One instance per page (modules load once).
import { api } from "../api.js";
import { qs } from "../dom.js";
import { live } from "../live.js";

const head = qs("[data-convhead]");

export const conversationId = head?.dataset.conversationId ?? null;
export const channelId = head?.dataset.channelId ?? null;
export const contactId = head?.dataset.contactId ?? null;
export const myId = qs(".app")?.dataset.userId ?? null;

const listeners = new Set();
let current = null;
let people = null;
// The newest message this page has acknowledged (`seen_seq` of guarded changes): set when
// the conversation is first fetched, after the agent's own messages, and after a
// conflict, never silently when someone else's message arrives.
let seenSeq = null;

/** The conversation as last fetched (null before the first answer). */
export function conversation() {
  return current;
}

/** Call `fn(conversation)` on every change of the conversation. */
export function onConversation(fn) {
  listeners.add(fn);
  if (current) fn(current);
}

function set(value) {
  current = value;
  if (seenSeq === null) seenSeq = value.last_seq;
  for (const fn of listeners) fn(value);
}

/** Fetch the conversation again (after an event, a conflict or a reconnect). */
export async function refresh() {
  if (!conversationId) return null;
  set(await api.get(`/conversations/${conversationId}`));
  return current;
}

/**
 * PATCH the conversation. With `guard`, the change carries `seen_seq`, so that it is
 * refused (409, ApiError.conflict) if a message arrived since this page last looked.
 */
export async function change(changes, { guard = false } = {}) {
  const body = { ...changes };
  if (guard && seenSeq !== null) body.seen_seq = seenSeq;
  try {
    set(await api.patch(`/conversations/${conversationId}`, body));
  } catch (err) {
    if (err.conflict) await refresh().then(() => { seenSeq = current.last_seq; }).catch(() => {});
    throw err;
  }
  return current;
}

/** The agent's own message (sequence `seq`) is on screen: later changes may follow it. */
export function acknowledge(seq) {
  if (typeof seq === "number" && (seenSeq === null || seq > seenSeq)) seenSeq = seq;
}

/** The active users who can see the channel: [{id, name, role, presence}], cached. */
export function directory({ fresh = false } = {}) {
  if (!people || fresh) {
    people = api.get("/directory/users", { channel_id: channelId }).then((page) => page.items);
    people.catch(() => { people = null; });
  }
  return people;
}

/** A user's name from the directory, or null. */
export async function nameOf(userId) {
  const users = await directory();
  return users.find((user) => user.id === userId)?.name ?? null;
}

if (conversationId) {
  live.on("conversation.updated", (data) => {
    if (data.conversation_id === conversationId) refresh().catch(() => {});
  });
  live.on("resync", () => refresh().catch(() => {}));
}
