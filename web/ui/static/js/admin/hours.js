// The business hours editor (templates/admin/policies/hours_edit.html): ranges per day
// and holidays added and removed in the page, then the whole schedule sent to
// /api/v1/business-hours (POST when new, PATCH when changed). The page is the state: what
// is sent is read from its inputs.
import { api } from "../api.js";
import { on, qs, qsa } from "../dom.js";
import { submitting } from "./policies_forms.js";

const DAY = 24 * 60;
const form = qs("#hours-form");

const minutes = (text) => {
  const [h, m] = text.split(":").map(Number);
  return h * 60 + m;
};
const clock = (total) => {
  const value = Math.max(0, Math.min(total, DAY)) % DAY;
  return `${String(Math.floor(value / 60)).padStart(2, "0")}:${String(value % 60).padStart(2, "0")}`;
};

function clone(id) {
  return qs(`#${id}`).content.firstElementChild.cloneNode(true);
}

function rangeRow(start, end) {
  const row = clone("range-template");
  qs("[data-part=start]", row).value = start;
  qs("[data-part=end]", row).value = end;
  return row;
}

function refreshDay(day) {
  qs("[data-closed]", day).hidden = qsa("[data-ranges] > li", day).length > 0;
}

function addRange(day) {
  const list = qs("[data-ranges]", day);
  const last = list.lastElementChild;
  // After an existing range, the next one starts an hour after it ends (an afternoon).
  let start = 9 * 60;
  if (last) {
    const end = qs("[data-part=end]", last).value;
    start = Math.min(end === "00:00" || !end ? DAY - 60 : minutes(end) + 60, DAY - 60);
  }
  const row = rangeRow(clock(start), clock(Math.min(start + 4 * 60, DAY)));
  list.append(row);
  refreshDay(day);
  qs("input", row).focus();
}

function copyMonday() {
  const monday = qs(".week-day[data-day=mon]", form);
  const ranges = qsa("[data-ranges] > li", monday).map((row) => [
    qs("[data-part=start]", row).value,
    qs("[data-part=end]", row).value,
  ]);
  for (const day of qsa(".week-day", form)) {
    if (!["tue", "wed", "thu", "fri"].includes(day.dataset.day)) continue;
    qs("[data-ranges]", day).replaceChildren(...ranges.map(([start, end]) => rangeRow(start, end)));
    refreshDay(day);
  }
}

function addHoliday() {
  const row = clone("holiday-template");
  qs("[data-holidays]", form).append(row);
  qs("[data-no-holidays]", form).hidden = true;
  qs("input", row).focus();
}

function week() {
  const result = {};
  for (const day of qsa(".week-day", form)) {
    const ranges = qsa("[data-ranges] > li", day).map((row) => {
      const end = qs("[data-part=end]", row).value;
      // A time input cannot say 24:00: a range ending at 00:00 runs to midnight.
      return [qs("[data-part=start]", row).value, end === "00:00" ? "24:00" : end];
    });
    ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (ranges.length) result[day.dataset.day] = ranges;
  }
  return result;
}

function holidays() {
  // Errors come back by index ("holidays.2.date"): each row is told its path.
  return qsa("[data-holidays] > li", form).map((row, index) => {
    row.dataset.field = `holidays.${index}`;
    for (const part of qsa("[data-suffix]", row)) part.dataset.field = `holidays.${index}.${part.dataset.suffix}`;
    const name = qs("[data-part=name]", row).value.trim();
    return { date: qs("[data-part=date]", row).value, name: name || null };
  });
}

const checked = (name) => qsa(`input[name=${name}]:checked`, form).map((input) => input.value);

if (form) {
  const zone = qs("#hours-timezone");
  if (zone.hasAttribute("data-guess")) {
    // A new schedule starts in the admin's own zone, when the browser names one we know.
    const guess = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (guess && qs(`#zones option[value="${CSS.escape(guess)}"]`)) zone.value = guess;
  }
  on(form, "click", "[data-action=add-range]", (event, button) => addRange(button.closest(".week-day")));
  on(form, "click", "[data-action=remove-range]", (event, button) => {
    const day = button.closest(".week-day");
    button.closest("li").remove();
    refreshDay(day);
    qs("[data-action=add-range]", day).focus();
  });
  on(form, "click", "[data-action=copy-monday]", copyMonday);
  on(form, "click", "[data-action=add-holiday]", addHoliday);
  on(form, "click", "[data-action=remove-holiday]", (event, button) => {
    button.closest("li").remove();
    qs("[data-no-holidays]", form).hidden = qsa("[data-holidays] > li", form).length > 0;
    qs("[data-action=add-holiday]", form).focus();
  });
  submitting(form, () => {
    const body = {
      name: qs("#hours-name").value.trim(),
      timezone: zone.value.trim(),
      week: week(),
      holidays: holidays(),
      channel_ids: checked("channel_ids"),
      team_ids: checked("team_ids"),
    };
    const id = form.dataset.id;
    return id ? api.patch(`/business-hours/${id}`, body) : api.post("/business-hours", body);
  });
}
