// What the contact list and the contact page share: the page's data (contacts_data.py),
// names of stages, users and contacts, identity rows, downloads of files the API answers
// to a POST, and showing an API error next to the fields it names.
import { ApiError, NetworkError } from "../api.js";
import { el, icon, pageData, qsa, setText } from "../dom.js";
import { t } from "../i18n.js";

export const data = pageData("contacts-data") ?? { users: [], channels: [], attributes: [], stages: [], can: {} };

const users = new Map(data.users.map((user) => [user.id, user]));
const channels = new Map(data.channels.map((channel) => [channel.id, channel]));

export const IDENTITY_ICONS = { email: "channel-email", phone: "channel-sms", telegram: "channel-telegram" };

export function stageName(stage) {
  return (
    { new: t("New"), lead: t("Lead"), qualified: t("Qualified"), customer: t("Customer"), lost: t("Lost") }[stage] ??
    stage
  );
}

/** A user's name; a user not in the page's list (removed since) is "A former user". */
export function userName(userId) {
  if (!userId) return t("Nobody");
  return users.get(userId)?.name ?? t("A former user");
}

export function channelOf(channelId) {
  return channels.get(channelId) ?? null;
}

/** The name a contact is shown by: theirs, else an identity, else a placeholder. */
export function contactName(contact) {
  return contact.name || contact.identities?.[0]?.value || t("Unnamed contact");
}

/** One way to reach a contact: its kind's icon and the value (customer-given: dir=auto). */
export function identityNode(identity, tag = "span") {
  return el(
    tag,
    { class: "identity" },
    icon(IDENTITY_ICONS[identity.kind] ?? "user", identity.kind),
    el("bdi", { class: "identity__value", dir: "auto" }, identity.value),
  );
}

export function tagChip(tag, ...extra) {
  return el("li", { class: "tag-chip" }, el("bdi", { dir: "auto" }, tag), ...extra);
}

/** A custom attribute's value as text. */
export function attributeText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? t("Yes") : t("No");
  if (typeof value === "object" && "amount" in value) return `${value.amount} ${value.currency}`;
  return String(value);
}

/** What went wrong, in a sentence for a notice. */
export function failure(error) {
  if (error instanceof NetworkError) return t("The server could not be reached. Try again.");
  if (error instanceof ApiError && error.status === 403) return t("You may not do that.");
  if (error instanceof ApiError) return t("It did not work: {reason}", { reason: error.message });
  return t("It did not work: {reason}", { reason: String(error?.message ?? error) });
}

/** Show an error in `notice` (role=alert), or clear it with null. */
export function showNotice(notice, error) {
  if (notice) setText(notice, error ? failure(error) : "");
}

/**
 * Put an ApiError's field messages under the inputs of `form` that name them
 * ([data-error-for=<last part of the path>]); returns whether any was shown.
 */
export function showFieldErrors(form, error) {
  for (const node of qsa("[data-error-for]", form)) setText(node, "");
  for (const node of qsa("[aria-invalid]", form)) node.removeAttribute("aria-invalid");
  if (!(error instanceof ApiError)) return false;
  let shown = false;
  for (const [path, message] of Object.entries(error.fields ?? {})) {
    // The most precise holder first: "attributes.plan", then "plan".
    const parts = path.split(".");
    let target = null;
    for (let i = 0; i < parts.length && !target; i += 1) {
      target = form.querySelector(`[data-error-for="${CSS.escape(parts.slice(i).join("."))}"]`);
    }
    target ??= form.querySelector('[data-error-for="*"]'); // one message for the whole form
    if (!target) continue;
    setText(target, message);
    target.closest(".field")?.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
    shown = true;
  }
  return shown;
}

/**
 * Fetch a file the API answers (a CSV export) and hand it to the browser as a download:
 * `fetch` rather than a link because the filter travels in a POST body with the CSRF
 * header. The file name is the server's (Content-Disposition).
 */
export async function download(path, { method = "GET", body } = {}) {
  const headers = { Accept: "text/csv, application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      credentials: "same-origin",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new NetworkError(err);
  }
  if (!response.ok) {
    const error = (await response.json().catch(() => null))?.error ?? {};
    throw new ApiError(response.status, error.code ?? "error", error.message ?? response.statusText, error.fields ?? {});
  }
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "contacts.csv";
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has taken the file once the click's task has run.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The input's text, trimmed; when empty, the input is marked invalid and focused (null). */
export function filledIn(input) {
  const text = input.value.trim();
  if (!text) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return null;
  }
  input.removeAttribute("aria-invalid");
  return text;
}
