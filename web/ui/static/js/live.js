// The websocket client of GET /ws (protocol: web/realtime, ws_protocol).
//
//   import { live } from "./live.js";
//   live.on("message.created", (data, frame) => …);   // any event type of the protocol
//   live.on("resync", () => refetch());               // events were missed: refetch lists
//   live.on("state", (state) => …);                   // "connecting" | "open" | "offline"
//   live.on("presence", (presence) => …);             // user_id → "online" | "away"
//   live.connect();
//   live.setPresence("away"); live.viewing(id); live.left(id); live.typing(id, true);
//
// After a drop it reconnects with exponential backoff (1 s doubling to 30 s, with jitter)
// and resumes with ?last_event_id=, so nothing is missed; when the server cannot resume
// it sends `resync`. A 4401 close (signed out, password changed) goes to the login page.

const BACKOFF_START_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const VIEWING_EVERY_MS = 25000; // the server forgets a viewer after 30 s
const SIGNED_OUT = 4401;

// Deferred and module scripts have all run when DOMContentLoaded fires. readyState is
// "interactive" both while they run and after, so the event is watched from here (this
// module runs with the first of them); "load" covers a module imported after the event.
let pageReady = document.readyState === "complete";
const scriptsRan = new Promise((resolve) => {
  if (pageReady) return resolve();
  const ran = () => {
    pageReady = true;
    resolve();
  };
  document.addEventListener("DOMContentLoaded", ran, { once: true });
  window.addEventListener("load", ran, { once: true });
});

export class Live {
  #socket = null;
  #handlers = new Map();
  #lastEventId = null;
  #backoff = BACKOFF_START_MS;
  #retryTimer = null;
  #viewingTimer = null;
  #viewing = null;
  #presence = "online";
  #wanted = false;
  #waitingForPage = false;
  state = "offline";
  /** user_id → "online" | "away", kept up to date from hello and presence.changed. */
  presence = new Map();
  userId = null;

  /** Listen to a frame type (or "state", "presence", "*"); returns a function to stop. */
  on(type, handler) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(handler);
    return () => this.#handlers.get(type)?.delete(handler);
  }

  #emit(type, data, frame = null) {
    for (const handler of [...(this.#handlers.get(type) ?? []), ...(type === "state" ? [] : this.#handlers.get("*") ?? [])]) {
      try {
        handler(data, frame);
      } catch (err) {
        console.error(`live: a ${type} handler failed`, err);
      }
    }
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.#emit("state", state);
  }

  connect() {
    this.#wanted = true;
    if (this.#socket || this.#waitingForPage) return;
    // A page's modules are separate scripts that run one after another, and frames can
    // arrive between two of them: a frame sent once (the current viewers) would be lost
    // to a module not yet run. So the socket opens once every script has run.
    if (!pageReady) {
      this.#waitingForPage = true;
      scriptsRan.then(() => {
        this.#waitingForPage = false;
        if (this.#wanted && !this.#socket) this.#open();
      });
      return;
    }
    this.#open();
  }

  close() {
    this.#wanted = false;
    clearTimeout(this.#retryTimer);
    this.#socket?.close(1000);
    this.#socket = null;
    this.#setState("offline");
  }

  #open() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const query = this.#lastEventId ? `?last_event_id=${encodeURIComponent(this.#lastEventId)}` : "";
    const socket = new WebSocket(`${scheme}//${window.location.host}/ws${query}`);
    this.#socket = socket;
    this.#setState("connecting");
    socket.addEventListener("message", (event) => this.#receive(event));
    socket.addEventListener("close", (event) => this.#closed(socket, event));
  }

  #receive(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.id) this.#lastEventId = frame.id;
    switch (frame.type) {
      case "hello":
        this.#hello(frame.data);
        break;
      case "presence.changed":
        if (frame.data.status === "offline") this.presence.delete(frame.data.user_id);
        else this.presence.set(frame.data.user_id, frame.data.status);
        this.#emit("presence", this.presence);
        break;
      case "error":
        console.warn("live: the server refused a frame:", frame.data?.message);
        break;
      case "pong":
        return;
    }
    this.#emit(frame.type, frame.data ?? {}, frame);
  }

  #hello(data) {
    this.#backoff = BACKOFF_START_MS;
    this.userId = data.user_id;
    if (!this.#lastEventId && data.last_event_id) this.#lastEventId = data.last_event_id;
    this.presence = new Map(Object.entries(data.presence ?? {}));
    this.#setState("open");
    this.#emit("presence", this.presence);
    // What this page had told the server before the drop.
    if (this.#presence !== "online") this.#send({ type: "presence", status: this.#presence });
    if (this.#viewing) this.#send({ type: "viewing", conversation_id: this.#viewing });
  }

  #closed(socket, event) {
    if (this.#socket !== socket) return;
    this.#socket = null;
    if (event.code === SIGNED_OUT) {
      this.#wanted = false;
      this.#setState("offline");
      const next = window.location.pathname + window.location.search;
      window.location.assign(`/login?next=${encodeURIComponent(next)}`);
      return;
    }
    this.#setState(this.#wanted ? "connecting" : "offline");
    if (!this.#wanted) return;
    const delay = this.#backoff * (0.75 + Math.random() * 0.5);
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#retryTimer = setTimeout(() => this.#open(), delay);
  }

  #send(frame) {
    if (this.#socket?.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  /** "online" or "away" (kept across reconnects). */
  setPresence(status) {
    this.#presence = status;
    this.#send({ type: "presence", status });
  }

  get ownPresence() { return this.#presence; }

  /** This page shows that conversation (re-sent while it stays open). */
  viewing(conversationId) {
    if (this.#viewing && this.#viewing !== conversationId) this.left(this.#viewing);
    this.#viewing = conversationId;
    this.#send({ type: "viewing", conversation_id: conversationId });
    clearInterval(this.#viewingTimer);
    this.#viewingTimer = setInterval(
      () => this.#send({ type: "viewing", conversation_id: conversationId }),
      VIEWING_EVERY_MS,
    );
  }

  /** This page no longer shows that conversation. */
  left(conversationId) {
    if (this.#viewing === conversationId) {
      this.#viewing = null;
      clearInterval(this.#viewingTimer);
    }
    this.#send({ type: "left", conversation_id: conversationId });
  }

  /** The user is (or stopped) typing in that conversation. */
  typing(conversationId, typing) {
    this.#send({ type: "typing", conversation_id: conversationId, typing: Boolean(typing) });
  }
}

/** The page's one connection. */
export const live = new Live();
