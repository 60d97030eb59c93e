// The report screen (templates/admin/reports/index.html).
//
// Filters: a select that changes submits the form (the URL is the report); typing a date
// switches the range to "custom". A first visit without a time zone in the URL asks again
// in the browser's own zone, so days are the reader's local days.
//
// Overview: refreshed from GET /api/v1/reports/overview, narrowed to the page's channel
// and team (`data-channel-id`, `data-team-id`: empty for all), when live events arrive (one
// fetch per burst), after a reconnect, and every minute (an SLA target slips into "at
// risk" as time passes, with no event). Durations are written with Intl in the same
// CLDR units the server uses (web/ui/admin/reports_view.py Formats.duration).
import { api } from "../api.js";
import { on, qs, qsa, setText } from "../dom.js";
import { lang } from "../i18n.js";
import { live } from "../live.js";

const REFRESH_DELAY_MS = 300;
const REFRESH_EVERY_MS = 60000;
const LIVE_EVENTS = [
  "conversation.created",
  "conversation.updated",
  "conversation.assigned",
  "message.created",
  "sla.breached",
];
// [below this many seconds, seconds per unit, Intl unit], as the server's table.
const UNITS = [
  [60, 1, "second"],
  [3600, 60, "minute"],
  [172800, 3600, "hour"],
  [Infinity, 86400, "day"],
];

/** "45 sec", "2.5 min", "3 hr", "2 days" in the page's language. */
export function duration(seconds) {
  for (const [below, size, unit] of UNITS) {
    if (seconds < below) {
      const amount = seconds / size;
      const fraction = amount >= 10 || size === 1 ? 0 : 1;
      return new Intl.NumberFormat(lang, {
        style: "unit",
        unit,
        unitDisplay: "short",
        maximumFractionDigits: fraction,
      }).format(amount);
    }
  }
  return String(seconds);
}

function setupFilters(form) {
  const range = qs("#f-range", form);
  on(form, "change", "select", (event, select) => {
    if (select === range && range.value === "custom") {
      qs("#f-from", form).focus();
      return;
    }
    form.requestSubmit();
  });
  on(form, "input", "input[type=date]", () => {
    range.value = "custom";
  });

  const params = new URLSearchParams(window.location.search);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zones = qs("#f-timezone", form);
  const known = zone && [...zones.options].some((option) => option.value === zone);
  if (!params.has("timezone") && known && zone !== zones.value) {
    params.set("timezone", zone);
    window.location.replace(`${window.location.pathname}?${params}`);
  }
}

function setupOverview(root) {
  const badge = qs("[data-live-badge]", root);
  // The same narrowing as the figures the server drew (none: the whole inbox).
  const narrowed = {
    channel_id: root.dataset.channelId || null,
    team_id: root.dataset.teamId || null,
  };
  let timer = null;
  let busy = false;
  let again = false;

  function show(figures) {
    for (const stat of qsa("[data-overview-field]", root)) {
      const value = figures[stat.dataset.overviewField];
      const node = qs(".stat__value", stat);
      node.dataset.value = String(value);
      setText(node, String(value));
      stat.dataset.active = String(value > 0);
    }
    const wait = qs("[data-overview-wait]", root);
    const seconds = figures.waiting_since
      ? Math.max(0, (Date.parse(figures.at) - Date.parse(figures.waiting_since)) / 1000)
      : null;
    wait.dataset.value = seconds === null ? "" : String(seconds);
    setText(wait, seconds === null ? "—" : duration(seconds));
  }

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    root.dataset.refreshing = "true";
    try {
      show(await api.get("/reports/overview", narrowed));
    } catch {
      // Offline or a passing failure: the figures stay, the badge tells the state, and
      // the next event or minute tries again.
    } finally {
      busy = false;
      root.dataset.refreshing = "false";
      if (again) {
        again = false;
        refreshSoon();
      }
    }
  }

  function refreshSoon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_DELAY_MS);
  }

  for (const type of LIVE_EVENTS) live.on(type, refreshSoon);
  live.on("resync", refreshSoon);
  let wasOffline = false;
  live.on("state", (state) => {
    badge.dataset.state = state === "open" ? "open" : "offline";
    if (state === "offline") wasOffline = true;
    else if (state === "open" && wasOffline) {
      wasOffline = false;
      refreshSoon();
    }
  });
  setInterval(refreshSoon, REFRESH_EVERY_MS);
}

const form = qs("[data-report-filters]");
if (form) setupFilters(form);
const overview = qs("[data-overview]");
if (overview) setupOverview(overview);
