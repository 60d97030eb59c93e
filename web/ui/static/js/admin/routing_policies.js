// Auto-assignment policies on the routing page: one per channel or team, switched on and
// off, with the open conversations each agent may hold (empty: no limit); added for a
// channel or team that has none yet, deleted after a confirmation.
import { api, ApiError } from "../api.js";
import { el, on, qs, qsa, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { clearErrors, clone, confirmDialog, failure, markError, notify, text } from "./routing_form.js";

export class Policies {
  constructor(panel, lookups, notice) {
    this.panel = panel;
    this.body = qs("#policies tbody", panel);
    this.form = qs("#policy-form", panel);
    this.lookups = lookups;
    this.notice = notice;
    this.items = [];
    on(this.body, "change", "[data-action=toggle-policy]", (_e, box) => this.toggle(box));
    on(this.body, "change", "[data-field=capacity]", (_e, input) => this.capacity(input));
    on(this.body, "click", "[data-action=delete-policy]", (_e, button) => this.remove(button));
    on(this.form, "submit", (event) => {
      event.preventDefault();
      this.add();
    });
  }

  async load() {
    this.items = (await api.get("/assignment-policies")).items;
    replaceChildren(this.body, ...this.items.map((policy) => this.row(policy)));
    qs("#policies-empty", this.panel).hidden = this.items.length > 0;
    qs("#policies", this.panel).hidden = this.items.length === 0;
    this.targets();
  }

  target(policy) {
    const [kind, id] = policy.channel_id ? ["channels", policy.channel_id] : ["teams", policy.team_id];
    return this.lookups[kind].find((item) => item.id === id)?.name ?? t("unknown");
  }

  row(policy) {
    const row = clone("policy-row");
    row.dataset.id = policy.id;
    setText(qs("[data-cell=target]", row), this.target(policy));
    setText(
      qs("[data-cell=kind]", row),
      policy.channel_id ? t("Channel") : qs("[data-cell=kind]", row).dataset.team,
    );
    const box = qs("[data-action=toggle-policy]", row);
    box.checked = policy.enabled;
    const input = qs("[data-field=capacity]", row);
    input.value = policy.default_capacity ?? "";
    input.id = `policy-capacity-${policy.id}`;
    qs("label[data-label-for=capacity]", row).htmlFor = input.id;
    return row;
  }

  /** Only channels and teams without a policy can be chosen. */
  targets() {
    const taken = new Set(this.items.flatMap((p) => [p.channel_id, p.team_id]));
    for (const group of qsa("optgroup[data-options]", this.form)) {
      const items = this.lookups[group.dataset.options].filter((item) => !taken.has(item.id));
      const prefix = group.dataset.options === "channels" ? "channel" : "team";
      replaceChildren(group, ...items.map((item) => el("option", { value: `${prefix}:${item.id}` }, item.name)));
    }
  }

  policyOf(node) {
    return this.items.find((p) => p.id === node.closest("tr").dataset.id);
  }

  async toggle(box) {
    const policy = this.policyOf(box);
    try {
      Object.assign(policy, await api.patch(`/assignment-policies/${policy.id}`, { enabled: box.checked }));
      notify(this.notice, text("saved"));
    } catch (err) {
      box.checked = !box.checked;
      notify(this.notice, failure(err), false);
    }
  }

  async capacity(input) {
    const policy = this.policyOf(input);
    const value = input.value.trim() === "" ? null : Number(input.value);
    try {
      Object.assign(policy, await api.patch(`/assignment-policies/${policy.id}`, { default_capacity: value }));
      input.removeAttribute("aria-invalid");
      notify(this.notice, text("saved"));
    } catch (err) {
      input.setAttribute("aria-invalid", "true");
      notify(this.notice, failure(err), false);
    }
  }

  async remove(button) {
    const policy = this.policyOf(button);
    const name = this.target(policy);
    if (!(await confirmDialog(t("Stop assigning automatically?"), name))) {
      button.focus();
      return;
    }
    try {
      await api.delete(`/assignment-policies/${policy.id}`);
      await this.load();
      notify(this.notice, text("saved"));
      qs("#policy-target", this.form).focus();
    } catch (err) {
      notify(this.notice, failure(err), false);
    }
  }

  async add() {
    clearErrors(this.form);
    const target = qs("#policy-target", this.form).value;
    const capacity = qs("#policy-capacity", this.form).value.trim();
    if (!target) {
      markError(this.form, "target", t("Choose a channel or a team."));
      qs("#policy-target", this.form).focus();
      return;
    }
    const [kind, id] = target.split(":");
    const body = {
      [kind === "channel" ? "channel_id" : "team_id"]: id,
      default_capacity: capacity === "" ? null : Number(capacity),
    };
    try {
      await api.post("/assignment-policies", body);
      this.form.reset();
      await this.load();
      notify(this.notice, text("saved"));
    } catch (err) {
      if (err instanceof ApiError && err.fields?.default_capacity) {
        markError(this.form, "default_capacity", err.fields.default_capacity);
      } else {
        notify(this.notice, failure(err), false);
      }
    }
  }
}
