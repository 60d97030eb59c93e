// Form plumbing of the automation pages (routing rules, webhooks): cloning <template>s
// with unique ids for their labels and errors, field errors shown at the field (from the
// browser's own checks and from the API's `fields`), the confirmation dialog, lists read
// to the end, and the server-translated strings of the page.
import { api } from "../api.js";
import { pageData, qs, qsa, setText } from "../dom.js";

let serial = 0;

/** Strings the page translated on the server (`automation-strings`), `{name}` filled. */
const strings = pageData("automation-strings") ?? {};
export function text(key, params = {}) {
  const template = strings[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(params, name) ? String(params[name]) : whole,
  );
}

/** The first element of <template id=…>, cloned. */
export function clone(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}

/** Every element of <template id=…>, cloned (a template of several fields). */
export function cloneAll(id) {
  return [...document.getElementById(id).content.cloneNode(true).children];
}

/**
 * Give the [data-field] controls of `nodes` unique ids, and tie their labels
 * (label[data-label-for]) and errors ([data-error-for]) to them.
 */
export function wire(...nodes) {
  const prefix = `af${++serial}`;
  for (const root of nodes) {
    const all = (selector) => [...(root.matches(selector) ? [root] : []), ...qsa(selector, root)];
    for (const control of all("[data-field]")) control.id = `${prefix}-${control.dataset.field}`;
    for (const label of all("label[data-label-for]")) label.htmlFor = `${prefix}-${label.dataset.labelFor}`;
    for (const error of all("[data-error-for]")) error.id = `${prefix}-${error.dataset.errorFor}-error`;
  }
}

/** Show `message` at the field `name` inside `root`; false when there is no such place. */
export function markError(root, name, message) {
  const error = qs(`[data-error-for="${name}"]`, root);
  if (!error) return false;
  setText(error, message);
  error.hidden = false;
  const control = qs(`[data-field="${name}"]`, root);
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", error.id);
    control.closest(".field, .choices")?.classList.add("field--invalid");
  }
  return true;
}

/** Remove every field error inside `root`. */
export function clearErrors(root) {
  for (const error of qsa("[data-error-for]", root)) {
    error.hidden = true;
    setText(error, "");
  }
  for (const control of qsa("[aria-invalid]", root)) {
    control.removeAttribute("aria-invalid");
    control.removeAttribute("aria-describedby");
  }
  for (const field of qsa(".field--invalid", root)) field.classList.remove("field--invalid");
}

/** Focus the first control marked invalid inside `root` (or its first shown error). */
export function focusFirstError(root) {
  const control = qs("[aria-invalid=true]", root);
  const target = control?.tagName === "FIELDSET" ? qs("input", control) : control;
  (target ?? qs("[data-error-for]:not([hidden])", root))?.focus?.();
  (target ?? qs("[data-error-for]:not([hidden])", root))?.scrollIntoView?.({ block: "center" });
}

/** Show a message in a .notice element: good news or a failure. */
export function notify(node, message, good = true) {
  node.classList.toggle("notice--good", good);
  node.classList.toggle("notice--bad", !good);
  setText(node, message);
}

/** Why an API call failed, in words for the notice. */
export function failure(err) {
  return text("failed", { reason: err?.message || String(err) });
}

/**
 * Ask in the page's <dialog id="confirm-dialog">: resolves true when confirmed. `title`
 * and `body` replace its texts.
 */
export function confirmDialog(title, body) {
  const dialog = document.getElementById("confirm-dialog");
  setText(qs(".dialog__title", dialog), title);
  setText(qs("[data-confirm-text]", dialog), body);
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
    qs("button[value=cancel]", dialog).focus();
  });
}

/** Every item of a paged list of the API. */
export async function listAll(path, query = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api.get(path, { ...query, limit: 200, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
