// The conversation list pane: the current view's conversations (the view's filter is on
// .sidebar__views[data-query]) by status tab and sort, 25 at a time with more on scroll;
// rows with their previews; live updates and the sidebar's counts; keyboard (j/k or
// arrows move, Enter opens, x selects, / searches); bulk actions; search.
import { api } from "../api.js";
import { on, qs, qsa, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";
import { setupBulk } from "./bulk.js";
import { conversationRow } from "./row.js";
import { setupSearch } from "./search.js";

const PAGE = 25;
const MAX_REFRESH = 200; // the API's largest page: what a live refresh re-reads at most
const PREVIEW_BATCH = 100;
const REFRESH_DELAY_MS = 250; // live events come in bursts: one refetch per burst
const STATUSES = ["open", "pending", "snoozed", "resolved"];
const SORTS = ["last_activity", "waiting"];
const LIVE_EVENTS = ["conversation.created", "conversation.updated", "conversation.assigned", "message.created"];

const root = qs("[data-inbox]");
const app = qs(".app");

if (root && app) {
  const views = qs(".sidebar__views");
  const viewQuery = JSON.parse(views?.dataset.query || "{}");
  const viewKey = views?.dataset.view ?? null;
  const me = app.dataset.userId;
  const openId = app.dataset.conversationId ?? null;
  const list = qs("[data-list]", root);
  const more = qs("[data-more]", root);
  const empty = qs("[data-empty]", root);
  const failure = qs("[data-list-error]", root);
  const params = new URLSearchParams(window.location.search);

  const state = {
    status: STATUSES.includes(params.get("status")) ? params.get("status") : "open",
    sort: SORTS.includes(params.get("sort")) ? params.get("sort") : "last_activity",
    items: [],
    cursor: null,
    generation: 0, // answers of an older load are dropped
    loading: false,
    searching: false,
  };
  const previews = new Map(); // id → { key, preview }
  const selected = new Set();

  // --- loading ------------------------------------------------------------------------

  function query(limit, cursor) {
    return { ...viewQuery, status: state.status, sort: state.sort, limit, cursor };
  }

  const previewKey = (item) => `${item.last_seq}:${item.assignee_id}:${item.contact_id}`;

  async function fillPreviews(items) {
    const missing = items.filter((item) => previews.get(item.id)?.key !== previewKey(item));
    for (let at = 0; at < missing.length; at += PREVIEW_BATCH) {
      const batch = missing.slice(at, at + PREVIEW_BATCH);
      const answer = await api.get("/conversations/previews", { ids: batch.map((item) => item.id).join(",") });
      const byId = new Map(answer.items.map((preview) => [preview.id, preview]));
      for (const item of batch) previews.set(item.id, { key: previewKey(item), preview: byId.get(item.id) ?? null });
    }
  }

  /** Load the first page again (`reset`), or re-read as many rows as are shown (live). */
  async function load({ reset = false } = {}) {
    const generation = ++state.generation;
    const limit = reset ? PAGE : Math.min(MAX_REFRESH, Math.max(PAGE, state.items.length));
    state.loading = true;
    if (reset) root.dataset.state = "loading";
    try {
      const page = await api.get("/conversations", query(limit));
      await fillPreviews(page.items);
      if (generation !== state.generation) return;
      state.items = page.items;
      state.cursor = page.next_cursor;
      failure.hidden = true;
      render();
    } catch (err) {
      if (generation !== state.generation) return;
      showFailure(err);
    } finally {
      if (generation === state.generation) {
        state.loading = false;
        root.dataset.state = "ready";
      }
    }
  }

  async function loadMore() {
    if (state.loading || !state.cursor) return;
    const generation = state.generation;
    state.loading = true;
    more.disabled = true;
    try {
      const page = await api.get("/conversations", query(PAGE, state.cursor));
      await fillPreviews(page.items);
      if (generation !== state.generation) return;
      const known = new Set(state.items.map((item) => item.id));
      state.items.push(...page.items.filter((item) => !known.has(item.id)));
      state.cursor = page.next_cursor;
      render();
    } catch (err) {
      if (generation === state.generation) showFailure(err);
    } finally {
      if (generation === state.generation) state.loading = false;
      more.disabled = false;
    }
  }

  function showFailure(err) {
    failure.hidden = false;
    setText(
      failure,
      err?.name === "NetworkError"
        ? t("The list could not be loaded: you seem to be offline. It reloads when the connection returns.")
        : t("The list could not be loaded. Try again in a moment."),
    );
  }

  // --- rendering ----------------------------------------------------------------------

  function render() {
    const focused = document.activeElement?.closest?.(".conv");
    const focusedId = focused && list.contains(focused) ? focused.dataset.id : null;
    const onCheck = document.activeElement?.classList?.contains("conv__check");
    const shown = new Set(state.items.map((item) => item.id));
    for (const id of [...selected]) if (!shown.has(id)) selected.delete(id);
    replaceChildren(
      list,
      state.items.map((item) =>
        conversationRow(item, previews.get(item.id)?.preview ?? null, {
          selected: selected.has(item.id),
          current: item.id === openId,
          viewKey,
          status: state.status,
        }),
      ),
    );
    list.dataset.selecting = String(selected.size > 0);
    empty.hidden = state.items.length > 0;
    more.hidden = !state.cursor;
    bulk.update(selected.size, state.items.length);
    if (focusedId) {
      const row = rowOf(focusedId);
      (row ? qs(onCheck ? ".conv__check" : ".conv__link", row) : null)?.focus({ preventScroll: true });
    }
  }

  const rowOf = (id) => qsa(".conv", list).find((row) => row.dataset.id === id) ?? null;

  // --- counts in the sidebar ----------------------------------------------------------

  async function loadCounts() {
    try {
      const { counts } = await api.get("/conversations/counts", { status: state.status });
      for (const node of qsa("[data-count-for]")) {
        const n = counts[node.dataset.countFor] ?? 0;
        setText(node, n ? new Intl.NumberFormat(document.documentElement.lang || "en").format(n) : "");
      }
    } catch {
      // The counts are a hint: the next event or resync tries again.
    }
  }

  // --- status tabs, sort, the address -------------------------------------------------

  function remember() {
    const next = new URLSearchParams(window.location.search);
    next.set("status", state.status);
    if (state.sort === "last_activity") next.delete("sort");
    else next.set("sort", state.sort);
    if (state.status === "open") next.delete("status");
    const search = next.toString();
    window.history.replaceState(window.history.state, "", `${window.location.pathname}${search ? `?${search}` : ""}`);
    // The sidebar's views keep the tab and the sort.
    for (const link of qsa(".sidebar__item[data-view]")) {
      const target = new URLSearchParams({ view: link.dataset.view });
      if (state.status !== "open") target.set("status", state.status);
      if (state.sort !== "last_activity") target.set("sort", state.sort);
      link.setAttribute("href", `/inbox?${target}`);
    }
  }

  function showTabs() {
    for (const tab of qsa("[data-status]", root)) tab.setAttribute("aria-pressed", String(tab.dataset.status === state.status));
    qs("[data-sort]", root).value = state.sort;
  }

  on(root, "click", "[data-status]", (_event, tab) => {
    if (tab.dataset.status === state.status) return;
    state.status = tab.dataset.status;
    selected.clear();
    showTabs();
    remember();
    load({ reset: true });
    loadCounts();
  });
  on(qs("[data-sort]", root), "change", (event) => {
    state.sort = SORTS.includes(event.target.value) ? event.target.value : "last_activity";
    remember();
    load({ reset: true });
  });

  // --- more on scroll -----------------------------------------------------------------

  on(more, "click", () => loadMore());
  if ("IntersectionObserver" in window) {
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting) && !more.hidden) loadMore();
      },
      { root: root.closest(".pane"), rootMargin: "200px" },
    );
    observer.observe(more);
  }

  // --- selection and bulk actions -----------------------------------------------------

  function toggle(id, on_ = !selected.has(id)) {
    if (on_) selected.add(id);
    else selected.delete(id);
    const row = rowOf(id);
    if (row) {
      row.dataset.selected = String(on_);
      qs(".conv__check", row).checked = on_;
    }
    list.dataset.selecting = String(selected.size > 0);
    bulk.update(selected.size, state.items.length);
  }

  const bulk = setupBulk(root, {
    me,
    selection: () => state.items.filter((item) => selected.has(item.id)),
    done: (changed) => {
      for (const id of changed) selected.delete(id);
      load();
      loadCounts();
    },
  });
  on(list, "change", ".conv__check", (_event, box) => toggle(box.dataset.select, box.checked));
  on(qs("[data-select-all]", root), "change", (event) => {
    for (const item of state.items) toggle(item.id, event.target.checked);
  });

  // --- search -------------------------------------------------------------------------

  const search = setupSearch(root, {
    viewKey,
    onMode: (searching) => {
      state.searching = searching;
      root.dataset.mode = searching ? "search" : "list";
    },
  });

  // --- keyboard -----------------------------------------------------------------------

  function typingIn(target) {
    return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))
      && !target.classList.contains("conv__check");
  }

  function currentRow() {
    const row = document.activeElement?.closest?.(".conv");
    return row && list.contains(row) ? row : null;
  }

  function move(step) {
    const rows = qsa(".conv", list);
    if (!rows.length) return;
    const here = rows.indexOf(currentRow() ?? rows.find((row) => qs(".conv__link[aria-current]", row)));
    const next = rows[here === -1 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, here + step))];
    const link = qs(".conv__link", next);
    link.focus();
    link.scrollIntoView({ block: "nearest" });
    if (next === rows.at(-1) && state.cursor) loadMore();
  }

  on(document, "keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || state.searching) return;
    if (typingIn(event.target) || event.target.closest?.("details[open]")) return;
    // On a conversation's page its own shortcuts (j/k: next conversation) win unless the
    // keyboard is in the list.
    if (openId && !root.contains(document.activeElement)) return;
    const row = currentRow();
    const key = event.key;
    if (key === "/") {
      event.preventDefault();
      search.focus();
    } else if (key === "j" || key === "ArrowDown") {
      event.preventDefault();
      move(1);
    } else if (key === "k" || key === "ArrowUp") {
      event.preventDefault();
      move(-1);
    } else if ((key === "x" || key === "X") && row) {
      event.preventDefault();
      toggle(row.dataset.id);
    } else if (key === "Enter" && row && !event.target.classList.contains("conv__link")) {
      event.preventDefault();
      qs(".conv__link", row).click();
    }
  });

  // --- live ---------------------------------------------------------------------------

  let refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      load();
      loadCounts();
    }, REFRESH_DELAY_MS);
  }
  for (const type of LIVE_EVENTS) live.on(type, refreshSoon);
  live.on("resync", refreshSoon);
  // Back from offline without a resync (the server resumed): the list may be stale anyway.
  let wasOffline = false;
  live.on("state", (now) => {
    if (now === "offline") wasOffline = true;
    else if (now === "open" && wasOffline) {
      wasOffline = false;
      refreshSoon();
    }
  });

  showTabs();
  remember();
  load({ reset: true });
  loadCounts();
}
