// The filter builder of the contact list: the form <-> a segment filter as the API takes
// it (inbox/segments.py SegmentFilters). Conditions on custom attributes offer the
// comparisons their type allows (OPS_BY_TYPE there) and a value input of that type.
import { el, on, qs, qsa, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";
import { data } from "./contacts_common.js";

const PRESENCE = ["is_set", "is_not_set"];
const OPS_BY_TYPE = {
  text: ["eq", "neq", "contains", "in"],
  select: ["eq", "neq", "contains", "in"],
  number: ["eq", "gt", "gte", "lt", "lte"],
  money: ["eq", "gt", "gte", "lt", "lte"],
  date: ["before", "after", "on"],
  boolean: ["is"],
};
const definitions = new Map(data.attributes.map((attribute) => [attribute.key, attribute]));

/** "a, b،c" as ["a", "b", "c"] (the Persian comma too). */
function list(text) {
  return String(text ?? "")
    .split(/[,،]/)
    .map((part) => part.trim())
    .filter(Boolean);
}

function valueInput(type, op, definition) {
  const label = t("Value to compare");
  if (PRESENCE.includes(op)) return [];
  if (op === "in") {
    return [el("input", { class: "input input--small", name: "value", dir: "auto", "aria-label": label, placeholder: t("Values, separated by commas") })];
  }
  if (type === "select" && op !== "contains") {
    return [
      el(
        "select",
        { class: "input input--small select", name: "value", "aria-label": label },
        ...definition.options.map((option) => el("option", { value: option, dir: "auto" }, option)),
      ),
    ];
  }
  if (type === "boolean") {
    return [
      el(
        "select",
        { class: "input input--small select", name: "value", "aria-label": label },
        el("option", { value: "true" }, t("Yes")),
        el("option", { value: "false" }, t("No")),
      ),
    ];
  }
  if (type === "number") return [el("input", { class: "input input--small", name: "value", type: "number", step: "any", "aria-label": label })];
  if (type === "date") return [el("input", { class: "input input--small", name: "value", type: "date", "aria-label": label })];
  if (type === "money") {
    return [
      el("input", { class: "input input--small", name: "amount", inputmode: "decimal", "aria-label": t("Amount"), placeholder: "0.00" }),
      el("input", { class: "input input--small condition__currency", name: "currency", maxlength: "3", "aria-label": t("Currency"), placeholder: "EUR" }),
    ];
  }
  return [el("input", { class: "input input--small", name: "value", dir: "auto", "aria-label": label })];
}

/** Show the comparisons the chosen attribute's type allows and the value input they need. */
function refreshCondition(row) {
  const keySelect = qs("[data-condition-key]", row);
  const opSelect = qs("[data-condition-op]", row);
  const definition = definitions.get(keySelect.value);
  const type = definition?.type ?? "text";
  const allowed = [...OPS_BY_TYPE[type], ...PRESENCE];
  for (const option of opSelect.options) option.hidden = option.disabled = !allowed.includes(option.value);
  if (!allowed.includes(opSelect.value)) opSelect.value = allowed[0];
  const shape = `${type}:${opSelect.value === "in" ? "in" : PRESENCE.includes(opSelect.value) ? "none" : opSelect.value === "contains" ? "contains" : "one"}`;
  const holder = qs("[data-condition-value]", row);
  if (holder.dataset.shape !== shape) {
    holder.dataset.shape = shape;
    replaceChildren(holder, ...valueInput(type, opSelect.value, definition));
  }
}

export function addCondition(container, condition = null) {
  const row = qs("#condition-template").content.firstElementChild.cloneNode(true);
  container.append(row);
  if (condition) {
    qs("[data-condition-key]", row).value = condition.key;
    refreshCondition(row);
    qs("[data-condition-op]", row).value = condition.op;
  }
  refreshCondition(row);
  if (condition) writeValue(row, condition.value);
  return row;
}

function writeValue(row, value) {
  const holder = qs("[data-condition-value]", row);
  if (value === null || value === undefined) return;
  if (typeof value === "object" && !Array.isArray(value)) {
    qs("[name=amount]", holder).value = value.amount;
    qs("[name=currency]", holder).value = value.currency;
    return;
  }
  const input = qs("[name=value]", holder);
  if (input) input.value = Array.isArray(value) ? value.join(", ") : String(value);
}

function readCondition(row) {
  const key = qs("[data-condition-key]", row).value;
  const op = qs("[data-condition-op]", row).value;
  const type = definitions.get(key)?.type ?? "text";
  const condition = { key, op };
  if (PRESENCE.includes(op)) return condition;
  const holder = qs("[data-condition-value]", row);
  if (type === "money") {
    condition.value = { amount: qs("[name=amount]", holder).value.trim(), currency: qs("[name=currency]", holder).value.trim().toUpperCase() };
    return condition;
  }
  const raw = qs("[name=value]", holder).value;
  if (op === "in") condition.value = list(raw);
  else if (type === "number") condition.value = raw === "" ? null : Number(raw);
  else if (type === "boolean") condition.value = raw === "true";
  else condition.value = raw;
  return condition;
}

/** The form as a segment filter; only what is set (the API's defaults stay out). */
export function readFilters(form) {
  const filters = {};
  // form.elements: the search box in the toolbar belongs to the form too (form="filters").
  const checked = (name) => [...form.elements].filter((input) => input.name === name && input.checked).map((input) => input.value);
  const value = (name) => form.elements.namedItem(name)?.value ?? "";
  const stages = checked("stages");
  if (stages.length) filters.stages = stages;
  if (value("owner_id")) filters.owner_id = value("owner_id");
  for (const name of ["tags_any", "tags_none"]) {
    const tags = list(value(name)).map((tag) => tag.toLowerCase());
    if (tags.length) filters[name] = tags;
  }
  const kinds = checked("reachable_on_kinds");
  if (kinds.length) filters.reachable_on_kinds = kinds;
  if (value("has_open_conversation")) filters.has_open_conversation = value("has_open_conversation") === "true";
  if (checked("include_erased").length) filters.include_erased = true;
  const q = value("q").trim();
  if (q) filters.q = q;
  const conditions = qsa("[data-condition]", form).map(readCondition);
  if (conditions.length) filters.attributes = conditions;
  return filters;
}

/** Fill the form from a saved segment's filter. */
export function writeFilters(form, filters) {
  // Every field is set here: form.reset() would fire "reset", which clears the form again.
  for (const input of form.elements) {
    if (input.type !== "checkbox") continue;
    const wanted = filters[input.name];
    input.checked = Array.isArray(wanted) ? wanted.includes(input.value) : wanted === true;
  }
  const set = (name, value) => {
    const input = form.elements.namedItem(name);
    if (input) input.value = value;
  };
  set("owner_id", filters.owner_id ?? "");
  set("tags_any", (filters.tags_any ?? []).join(", "));
  set("tags_none", (filters.tags_none ?? []).join(", "));
  set("has_open_conversation", filters.has_open_conversation === undefined || filters.has_open_conversation === null ? "" : String(filters.has_open_conversation));
  set("q", filters.q ?? "");
  const conditions = qs("[data-conditions]", form);
  if (conditions) {
    replaceChildren(conditions);
    for (const condition of filters.attributes ?? []) {
      if (definitions.has(condition.key)) addCondition(conditions, condition);
    }
  }
}

/** How many kinds of condition a filter sets (the badge on the filter panel). */
export function countConditions(filters) {
  return Object.entries(filters).reduce((sum, [name, value]) => sum + (name === "attributes" ? value.length : 1), 0);
}

/** A value in one spelling: object keys sorted, nulls, empty lists and the default
 * `include_erased: false` left out (the API answers a filter with every default). */
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== "object") return value;
  const kept = Object.keys(value)
    .filter((key) => value[key] !== null && !(Array.isArray(value[key]) && !value[key].length))
    .filter((key) => !(key === "include_erased" && value[key] === false))
    .sort();
  return Object.fromEntries(kept.map((key) => [key, canonical(value[key])]));
}

/** Whether two filters are the same (does the form still show the saved segment?). */
export function sameFilters(a, b) {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Wire the condition rows: add, remove, and a changed attribute or comparison. */
export function wireConditions(form, onChange) {
  const container = qs("[data-conditions]", form);
  if (!container) return;
  on(form, "click", "[data-action=add-condition]", () => {
    const row = addCondition(container);
    qs("[data-condition-key]", row).focus();
    onChange();
  });
  on(form, "click", "[data-action=remove-condition]", (event, button) => {
    button.closest("[data-condition]").remove();
    qs("[data-action=add-condition]", form).focus();
    onChange();
  });
  on(form, "change", "[data-condition-key], [data-condition-op]", (event, select) => {
    refreshCondition(select.closest("[data-condition]"));
  });
}
