// A channel's settings form (templates/admin/channels/form.html): "Test connection" marks
// each field the provider refused with its reason, before or after saving; a Telegram
// token is confirmed by showing its bot's name before it can be connected; saving goes
// through POST /channels (then to the channel's page) or PATCH /channels/{id}; deleting
// asks first. Messages are the server's: the notice carries them in data-* attributes.
import { api, ApiError } from "../api.js";
import { on, qs, qsa, setText } from "../dom.js";

const form = qs("#channel-form");
const notice = qs("#form-notice");
const kind = form.dataset.kind;
const channelId = form.dataset.channelId ?? null;
const confirmFirst = form.hasAttribute("data-confirm-first");
const submit = form.querySelector("[type=submit]");
const testButton = form.querySelector("[data-action=test]");
const botCard = qs("#bot-card");

/** The configuration as typed. New channel: empty fields are left out (defaults apply).
 *  Saved channel: an empty secret keeps the stored one; other empty fields clear. */
function configOf() {
  const config = {};
  for (const input of qsa("[data-config]", form)) {
    const key = input.dataset.config;
    const raw = input.value.trim();
    if (raw === "") {
      if (channelId && !input.hasAttribute("data-secret")) {
        config[key] = input.dataset.type === "lines" ? [] : null;
      }
      continue;
    }
    if (input.dataset.type === "int") {
      config[key] = /^\d+$/.test(raw) ? Number(raw) : raw;
    } else if (input.dataset.type === "lines") {
      config[key] = raw.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
    } else {
      config[key] = raw;
    }
  }
  return config;
}

function say(message, tone) {
  notice.classList.toggle("notice--good", tone === "good");
  notice.classList.toggle("notice--bad", tone === "bad");
  setText(notice, message ?? "");
}

function fieldOf(key) {
  if (key === "name") return qs("#cf-name", form);
  return form.querySelector(`[data-config="${CSS.escape(key)}"]`);
}

function clearErrors() {
  for (const input of qsa("[aria-invalid]", form)) input.removeAttribute("aria-invalid");
  for (const field of qsa(".field--invalid", form)) field.classList.remove("field--invalid");
  for (const error of qsa(".field__error", form)) {
    error.hidden = true;
    setText(error, "");
  }
}

/** Marks each field with its error; answers whether every error found its field. */
function markErrors(errors) {
  let placed = true;
  let first = null;
  for (const [path, message] of Object.entries(errors)) {
    const input = fieldOf(path.replace(/^config\./, ""));
    if (!input) {
      placed = false;
      continue;
    }
    const field = input.closest(".field");
    field.classList.add("field--invalid");
    input.setAttribute("aria-invalid", "true");
    const error = qs(`#${input.id}-error`);
    setText(error, message);
    error.hidden = false;
    const advanced = input.closest("details");
    if (advanced) advanced.open = true;
    first ??= input;
  }
  first?.focus();
  return placed;
}

/** Errors that name no field of the form (the configuration as a whole). */
function unplaced(errors) {
  return Object.entries(errors)
    .filter(([path]) => !fieldOf(path.replace(/^config\./, "")))
    .map(([, message]) => message)
    .join(" ");
}

function showBot(account) {
  if (!botCard) return;
  botCard.hidden = !account;
  if (!account) return;
  setText(botCard.querySelector("[data-bot-name]"), account.name);
  setText(botCard.querySelector("[data-bot-username]"), account.username ? `@${account.username}` : "");
}

function failed(err, invalidMessage) {
  if (err instanceof ApiError && err.status === 422) {
    markErrors(err.fields);
    const rest = unplaced(err.fields);
    say(rest ? `${invalidMessage} ${rest}` : invalidMessage, "bad");
  } else {
    say(notice.dataset.error, "bad");
  }
}

async function test() {
  clearErrors();
  showBot(null);
  say(notice.dataset.testing, null);
  testButton.disabled = true;
  testButton.setAttribute("aria-busy", "true");
  try {
    const config = configOf();
    const result = channelId
      ? await api.post(`/channels/${channelId}/test`, { config })
      : await api.post("/channels/test", { kind, config });
    if (result.ok) {
      showBot(result.account);
      say(notice.dataset.works, "good");
      if (confirmFirst) setConfirmed(true);
    } else {
      markErrors(result.errors);
      const rest = unplaced(result.errors);
      say(rest ? `${notice.dataset.failed} ${rest}` : notice.dataset.failed, "bad");
    }
  } catch (err) {
    failed(err, notice.dataset.untestable);
  } finally {
    testButton.disabled = false;
    testButton.removeAttribute("aria-busy");
  }
}

async function save(event) {
  event.preventDefault();
  if (confirmFirst && submit.disabled) {
    say(notice.dataset.confirm, "bad");
    return;
  }
  clearErrors();
  say("", null);
  submit.disabled = true;
  const name = qs("#cf-name", form).value.trim();
  try {
    if (channelId) {
      const channel = await api.patch(`/channels/${channelId}`, { name, config: configOf() });
      for (const title of qsa("[data-channel-title]")) setText(title, channel.name);
      forgetTypedSecrets();
      say(notice.dataset.saved, "good");
    } else {
      const channel = await api.post("/channels", { kind, name, config: configOf() });
      window.location.assign(`/settings/channels/${channel.id}?connected=1`);
      return;
    }
  } catch (err) {
    failed(err, notice.dataset.invalid);
  }
  submit.disabled = false;
}

/** After saving, typed secrets are stored: the inputs go back to "stored, kept". */
function forgetTypedSecrets() {
  for (const input of qsa("[data-secret]", form)) {
    if (input.value === "") continue;
    input.value = "";
    input.setAttribute("data-stored", "");
    input.removeAttribute("required");
    const stored = form.dataset.storedPlaceholder;
    if (stored) input.placeholder = stored;
  }
}

/** Confirmed, Connect becomes the main action; else checking the token is. */
function setConfirmed(confirmed) {
  submit.disabled = !confirmed;
  submit.classList.toggle("button--primary", confirmed);
  testButton.classList.toggle("button--primary", !confirmed);
}

form.addEventListener("submit", save);
testButton?.addEventListener("click", test);

// A Telegram token must be confirmed again once it changes.
if (confirmFirst) {
  on(form, "input", "[data-config=bot_token], [data-config=api_base_url]", () => {
    setConfirmed(false);
    showBot(null);
  });
}

// Deleting, after the dialog's confirmation.
const dialog = qs("#delete-dialog");
if (dialog && channelId) {
  on(document, "click", "[data-action=delete]", () => {
    dialog.returnValue = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "delete") return;
    try {
      await api.delete(`/channels/${channelId}`);
      window.location.assign("/settings/channels?deleted=1");
    } catch {
      say(notice.dataset.error, "bad");
    }
  });
}
