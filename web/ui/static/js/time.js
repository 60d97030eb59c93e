// Times in the user's language, through Intl (no library).
import { lang } from "./i18n.js";

const relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto", style: "short" });
const absolute = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(lang, { timeStyle: "short" });

const STEPS = [
  ["second", 60],
  ["minute", 60],
  ["hour", 24],
  ["day", 7],
  ["week", 4.35],
  ["month", 12],
  ["year", Infinity],
];

function toDate(value) {
  return value instanceof Date ? value : new Date(value);
}

/** "5 min ago", "in 2 days", "now"… relative to `now`. */
export function relativeTime(value, now = new Date()) {
  let amount = (toDate(value).getTime() - now.getTime()) / 1000;
  if (Math.abs(amount) < 45) return relative.format(0, "second");
  for (const [unit, size] of STEPS) {
    if (Math.abs(amount) < size) return relative.format(Math.round(amount), unit);
    amount /= size;
  }
  return relative.format(Math.round(amount), "year");
}

/** A full date and time, e.g. for a title attribute. */
export function absoluteTime(value, timeZone = undefined) {
  const date = toDate(value);
  if (!timeZone) return absolute.format(date);
  return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short", timeZone }).format(date);
}

/** Only the time of day (the customer's local time, with their time zone). */
export function clockTime(value, timeZone = undefined) {
  if (!timeZone) return timeOnly.format(toDate(value));
  return new Intl.DateTimeFormat(lang, { timeStyle: "short", timeZone }).format(toDate(value));
}

/** A <time> element's text and title: relative shown, absolute on hover. */
export function fillTime(node, value) {
  const date = toDate(value);
  node.dateTime = date.toISOString();
  node.textContent = relativeTime(date);
  node.title = absoluteTime(date);
  return node;
}
