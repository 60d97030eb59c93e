// What the editors of the policies section share (business hours, SLA policies, canned
// responses): sending a form to the API, the API's 422 field errors shown at their
// fields, and deletes confirmed in a dialog. Every label comes from the page (the
// templates translate them), so this module has no strings of its own.
//
// An error about the dotted path "holidays.0.date" is shown in the element whose
// data-field is that path, or else its longest prefix ("holidays.0", "holidays"): in its
// own [data-error] slot, with its controls marked aria-invalid and described by it.
import { ApiError, api } from "../api.js";
import { on, qs, qsa, setText } from "../dom.js";

let errorIds = 0;

function slotFor(form, path) {
  const slots = qsa("[data-field]", form);
  const parts = path.split(".");
  while (parts.length) {
    const key = parts.join(".");
    const slot = slots.find((node) => node.dataset.field === key);
    if (slot) return slot;
    parts.pop();
  }
  return null;
}

const owned = (slot, selector) => qsa(selector, slot).filter((node) => node.closest("[data-field]") === slot);

// An error adds itself to what already describes a control (its hint), and leaves again.
function describe(control, errorId, shown) {
  control.dataset.describedBy ??= control.getAttribute("aria-describedby") ?? "";
  const ids = [control.dataset.describedBy, shown ? errorId : ""].filter(Boolean).join(" ");
  if (ids) control.setAttribute("aria-describedby", ids);
  else control.removeAttribute("aria-describedby");
}

function sentence(message) {
  const text = String(message ?? "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Hide every field error and notice of the form. */
export function clearErrors(form) {
  for (const node of qsa("[data-error]", form)) {
    node.hidden = true;
    setText(node, "");
  }
  for (const node of qsa(".field--invalid", form)) node.classList.remove("field--invalid");
  for (const node of qsa("[aria-invalid]", form)) {
    node.removeAttribute("aria-invalid");
    describe(node, null, false);
  }
  for (const node of qsa("[data-form-invalid], [data-form-failed]", form)) node.hidden = true;
}

/** Show `fields` ({path: message}) at their fields; what has no place goes to `rest`. */
export function showFieldErrors(form, fields) {
  const rest = [];
  let first = null;
  for (const [path, message] of Object.entries(fields)) {
    const slot = slotFor(form, path);
    const error = slot && owned(slot, "[data-error]")[0];
    if (!error) {
      rest.push(`${path}: ${message}`);
      continue;
    }
    slot.classList.add("field--invalid");
    error.id ||= `policy-error-${++errorIds}`;
    setText(error, error.textContent ? `${error.textContent} ${sentence(message)}` : sentence(message));
    error.hidden = false;
    for (const control of owned(slot, "input, select, textarea")) {
      control.setAttribute("aria-invalid", "true");
      describe(control, error.id, true);
      first ??= control;
    }
    first ??= slot;
  }
  return { first, rest };
}

/** Show (or, with no message, clear) one field's error, as a live check finds it. */
export function setFieldError(form, path, message) {
  const slot = slotFor(form, path);
  const error = slot && owned(slot, "[data-error]")[0];
  if (!error) return;
  slot.classList.toggle("field--invalid", Boolean(message));
  setText(error, message ? sentence(message) : "");
  error.hidden = !message;
  error.id ||= `policy-error-${++errorIds}`;
  for (const control of owned(slot, "input, select, textarea")) {
    if (message) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
    describe(control, error.id, Boolean(message));
  }
}

function failed(notice, reason) {
  setText(notice, notice.dataset.template.replace("{reason}", reason));
  notice.hidden = false;
}

/** Show a failed save: field errors at their fields, anything else as a notice. */
export function reportFailure(form, err) {
  const fields = err instanceof ApiError ? err.fields ?? {} : {};
  const { first, rest } = showFieldErrors(form, fields);
  if (first && !rest.length) {
    qs("[data-form-invalid]", form).hidden = false;
    if (first.focus && first.matches("input, select, textarea")) first.focus();
    else first.scrollIntoView({ block: "center" });
    return;
  }
  failed(qs("[data-form-failed]", form), rest.length ? rest.join("; ") : err.message);
  qs("[data-form-failed]", form).scrollIntoView({ block: "center" });
}

/**
 * Send the form with `send()` (a promise of the saved item) on submit; when saved, go to
 * the list (`data-list`), which says so and marks the row.
 */
export function submitting(form, send) {
  // A field the API refused stops saying so once it is changed.
  on(form, "input", (event) => {
    const slot = event.target instanceof Element && event.target.closest(".field--invalid[data-field]");
    if (!slot) return;
    setFieldError(form, slot.dataset.field, null);
    if (!qs(".field--invalid", form)) qs("[data-form-invalid]", form).hidden = true;
  });
  on(form, "submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = qs("[type=submit]", form);
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      const saved = await send();
      window.location.assign(`${form.dataset.list}?saved=${encodeURIComponent(saved.id)}`);
    } catch (err) {
      reportFailure(form, err);
      button.disabled = false;
    } finally {
      form.removeAttribute("aria-busy");
    }
  });
}

// Deletes: a [data-delete="/api path"] button (data-name: what it deletes; data-then:
// where to go afterwards, else its table row is removed) asks in #confirm-delete first.
const dialog = qs("#confirm-delete");
if (dialog) {
  let pending = null;
  const confirm = qs("[data-confirm-delete]", dialog);
  const failure = qs("[data-confirm-failed]", dialog);
  on(document, "click", "[data-delete]", (event, button) => {
    pending = button;
    setText(qs("[data-confirm-name]", dialog), button.dataset.name ?? "");
    failure.hidden = true;
    confirm.disabled = false;
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    pending?.focus();
  });
  on(confirm, "click", async () => {
    if (!pending) return;
    confirm.disabled = true;
    try {
      await api.delete(pending.dataset.delete);
    } catch (err) {
      // Gone already is what was wanted.
      if (!(err instanceof ApiError && err.notFound)) {
        failed(failure, err.message);
        confirm.disabled = false;
        return;
      }
    }
    if (pending.dataset.then) {
      window.location.assign(pending.dataset.then);
      return;
    }
    const row = pending.closest("[data-row]");
    const table = row?.closest("tbody");
    row?.remove();
    pending = null;
    dialog.close();
    if (table && !table.children.length) {
      window.location.assign(window.location.pathname);  // the empty list's own page
      return;
    }
    // Focus goes where the row was said to be gone, not back to a removed button.
    const notice = qs("[data-deleted]");
    if (notice) {
      notice.hidden = false;
      notice.tabIndex = -1;
      notice.focus();
    }
  });
}
