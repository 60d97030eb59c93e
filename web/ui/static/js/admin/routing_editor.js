// The routing rule editor: conditions (an "all" and an "any" group) and actions as rows,
// each with a type select whose inputs change with the type. Rows are cloned from the
// page's <template>s (fields-<type>); `data-field` names the API's field, so filling a
// row from a saved rule and reading it back are the same walk. Errors of the API
// (`conditions.all.0.text`: "value: not a valid regular expression…") land at the field.
import { api, ApiError } from "../api.js";
import { el, on, qs, qsa, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import {
  clearErrors,
  clone,
  cloneAll,
  focusFirstError,
  markError,
  notify,
  text,
  wire,
} from "./routing_form.js";

const DEFAULT_CONDITION = "text";
const DEFAULT_ACTION = "assign_team";

/**
 * The editor of one page. `lookups` holds the channels, teams and users to choose from
 * ({channels: [{id, name}], …}); `onSaved(rule)` is called after a save.
 */
export class RuleEditor {
  constructor(panel, lookups, onSaved) {
    this.panel = panel;
    this.form = qs("form", panel);
    this.error = qs("#rule-form-error", panel);
    this.title = qs("#rule-editor-title", panel);
    this.lookups = lookups;
    this.onSaved = onSaved;
    this.rule = null;
    this.returnFocus = null;
    wire(qs("[data-field=name]", this.form).closest(".field"));

    on(this.form, "click", "[data-action=add-condition]", (_e, button) => {
      const row = this.addRow(button.dataset.group, { type: DEFAULT_CONDITION });
      qs("[data-field=type]", row).focus();
    });
    on(this.form, "click", "[data-action=add-action]", () => {
      const row = this.addRow("actions", { type: DEFAULT_ACTION });
      qs("[data-field=type]", row).focus();
    });
    on(this.form, "click", "[data-action=remove-row]", (_e, button) => {
      const row = button.closest(".rule-row");
      const group = row.closest(".rule-group");
      row.remove();
      qs("[data-action^=add-]", group).focus();
    });
    on(this.form, "change", ".rule-row__type [data-field=type]", (_e, select) => {
      this.showFields(select.closest(".rule-row"), { type: select.value });
    });
    on(this.form, "change", "[data-field=operator]", (_e, select) => {
      showOperator(select.closest(".rule-row"));
    });
    on(this.form, "click", "[data-action=cancel-edit]", () => this.close());
    on(this.form, "keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
    on(this.form, "submit", (event) => {
      event.preventDefault();
      this.save();
    });
  }

  /** Open for a new rule (null) or a saved one; `from` gets focus back on close. */
  open(rule, from = null) {
    this.rule = rule;
    this.returnFocus = from;
    clearErrors(this.form);
    setText(this.error, "");
    setText(this.title, rule ? this.title.dataset.titleEdit : this.title.dataset.titleNew);
    this.form.elements.name.value = rule?.name ?? "";
    this.form.elements.enabled.checked = rule?.enabled ?? true;
    this.form.elements.stop_processing.checked = rule?.stop_processing ?? false;
    for (const group of ["all", "any", "actions"]) replaceChildren(this.rows(group));
    for (const condition of rule?.conditions.all ?? []) this.addRow("all", condition);
    for (const condition of rule?.conditions.any ?? []) this.addRow("any", condition);
    for (const action of rule?.actions ?? [{ type: DEFAULT_ACTION }]) this.addRow("actions", action);
    this.panel.hidden = false;
    this.panel.scrollIntoView({ block: "start" });
    this.form.elements.name.focus();
  }

  close() {
    this.panel.hidden = true;
    this.rule = null;
    this.returnFocus?.focus();
  }

  rows(group) {
    return qs(`[data-rows=${group}]`, this.form);
  }

  addRow(group, value) {
    const row = clone(group === "actions" ? "action-row" : "condition-row");
    wire(row);
    qs("[data-field=type]", row).value = value.type;
    this.rows(group).append(row);
    this.showFields(row, value);
    return row;
  }

  /** Put the inputs of `value.type` in the row, filled from `value`. */
  showFields(row, value) {
    const fields = cloneAll(`fields-${value.type}`);
    wire(...fields);
    replaceChildren(qs("[data-fields]", row), ...fields);
    const box = qs("[data-fields]", row);
    for (const control of qsa("[data-field]", box)) this.fill(control, value[control.dataset.field]);
    showOperator(row);
  }

  fill(control, value) {
    const name = control.dataset.field;
    if (control.tagName === "FIELDSET") {
      const wanted = new Set(value ?? []);
      if (control.dataset.choices) this.choices(control, wanted);
      for (const box of qsa("input[type=checkbox]", control)) box.checked = wanted.has(box.value);
    } else if (control.dataset.choices) {
      this.options(control, value);
      control.value = value ?? "";
    } else if (name === "inside") {
      control.value = String(value ?? true);
    } else if (name === "languages") {
      control.value = (value ?? []).join(", ");
    } else if (value !== undefined && value !== null) {
      control.value = value;
    }
  }

  /** The checkboxes of a choice of channels; a saved id no longer there stays, marked. */
  choices(fieldset, wanted) {
    const items = this.lookups[fieldset.dataset.choices];
    const known = new Set(items.map((item) => item.id));
    const boxes = [
      ...items.map((item) => [item.id, item.name]),
      ...[...wanted].filter((id) => !known.has(id)).map((id) => [id, t("unknown")]),
    ].map(([id, name]) =>
      el("label", { class: "check" }, el("input", { type: "checkbox", value: id }), " ", el("span", { dir: "auto" }, name)),
    );
    if (boxes.length === 0) boxes.push(el("span", { class: "muted" }, t("No channels yet.")));
    replaceChildren(qs("[data-options]", fieldset), ...boxes);
  }

  /** The options of a team or agent select, after its "Choose…" option. */
  options(select, current) {
    const items = this.lookups[select.dataset.choices];
    const options = items.map((item) => el("option", { value: item.id }, item.name));
    if (current && !items.some((item) => item.id === current)) {
      options.push(el("option", { value: current }, t("unknown")));
    }
    select.append(...options);
  }

  /** The rule as the API takes it. */
  read() {
    const elements = this.form.elements;
    return {
      name: elements.name.value.trim(),
      enabled: elements.enabled.checked,
      stop_processing: elements.stop_processing.checked,
      conditions: {
        all: [...this.rows("all").children].map(readRow),
        any: [...this.rows("any").children].map(readRow),
      },
      actions: [...this.rows("actions").children].map(readRow),
    };
  }

  /** The browser's own checks: required fields, a choice in each choice, an action. */
  check() {
    let fine = true;
    const fail = (root, name, message) => {
      markError(root, name, message);
      fine = false;
    };
    if (!this.form.elements.name.value.trim()) fail(this.form, "name", t("Give the rule a name."));
    for (const row of qsa(".rule-row", this.form)) {
      const box = qs("[data-fields]", row);
      for (const control of qsa("[data-field]", box)) {
        if (control.closest("[hidden]")) continue;
        if (control.tagName === "FIELDSET" && !qs("input:checked", control)) {
          fail(box, control.dataset.field, t("Choose at least one."));
        } else if (control.required && !control.value.trim()) {
          fail(box, control.dataset.field, t("Fill this in."));
        }
      }
    }
    if (this.rows("actions").children.length === 0) {
      fail(this.rows("actions").closest(".rule-group"), "group", t("Add at least one action."));
    }
    return fine;
  }

  async save() {
    clearErrors(this.form);
    setText(this.error, "");
    if (!this.check()) {
      notify(this.error, text("check_fields"), false);
      focusFirstError(this.form);
      return;
    }
    const body = this.read();
    const submit = qs("button[type=submit]", this.form);
    submit.disabled = true;
    try {
      const saved = this.rule
        ? await api.patch(`/routing-rules/${this.rule.id}`, body)
        : await api.post("/routing-rules", body);
      this.panel.hidden = true;
      this.rule = null;
      await this.onSaved(saved);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) {
        const left = Object.entries(err.fields).filter(([path, message]) => !this.place(path, message));
        const rest = left.map(([path, message]) => `${path}: ${message}`).join("; ");
        notify(this.error, rest ? `${text("check_fields")} ${rest}` : text("check_fields"), false);
        focusFirstError(this.form);
      } else {
        notify(this.error, text("failed", { reason: err.message }), false);
      }
    } finally {
      submit.disabled = false;
    }
  }

  /** Show the API's error of `path` where it belongs; false when nowhere fits. */
  place(path, message) {
    const parts = path.split(".");
    if (parts[0] === "name") return markError(this.form, "name", message);
    let group;
    let rest;
    if (parts[0] === "conditions" && (parts[1] === "all" || parts[1] === "any")) {
      [group, rest] = [parts[1], parts.slice(2)];
    } else if (parts[0] === "actions") {
      [group, rest] = ["actions", parts.slice(1)];
    } else {
      return false;
    }
    const rows = this.rows(group);
    const row = rest.length ? rows.children[Number(rest[0])] : null;
    if (!row) return markError(rows.closest(".rule-group"), "group", message);
    const inner = rest.slice(1);
    if (inner[0] === qs("[data-field=type]", row).value) inner.shift(); // the union's tag
    const box = qs("[data-fields]", row);
    let [field, words] = [inner[0], message];
    // A check of the whole condition names its field first: "value: required with …".
    const named = /^(\w+): (.+)$/s.exec(message);
    if (!field && named && qs(`[data-field="${named[1]}"]`, box)) [field, words] = named.slice(1);
    if (field && markError(box, field, words)) return true;
    return markError(row, "row", message);
  }
}

function readRow(row) {
  const value = { type: qs("[data-field=type]", row).value };
  for (const control of qsa("[data-fields] [data-field]", row)) {
    if (control.closest("[hidden]")) continue;
    const name = control.dataset.field;
    if (control.tagName === "FIELDSET") {
      value[name] = qsa("input:checked", control).map((box) => box.value);
    } else if (name === "inside") {
      value[name] = control.value === "true";
    } else if (name === "languages") {
      value[name] = control.value.split(/[\s,]+/).filter(Boolean);
    } else if (name === "key" || name === "label") {
      value[name] = control.value.trim();
    } else {
      value[name] = control.value;
    }
  }
  return value;
}

/** A contact attribute "is set" has no value to compare with. */
function showOperator(row) {
  const operator = qs("[data-fields] [data-field=operator]", row)?.value;
  for (const part of qsa("[data-unless-operator]", row)) part.hidden = part.dataset.unlessOperator === operator;
}
