// The routing rules page (/settings/routing): the rules in the order they run, switched
// on and off, moved up and down (buttons, or Alt+↑/↓ on the focused rule), deleted after
// a confirmation, and edited in routing_editor.js; the assignment policies below them
// (routing_policies.js). Everything goes through the API; names come from its lists.
import { api } from "../api.js";
import { el, on, qs, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { RuleEditor } from "./routing_editor.js";
import { confirmDialog, clone, failure, listAll, notify, text } from "./routing_form.js";
import { Policies } from "./routing_policies.js";

const list = qs("#rules");
const notice = qs("#routing-notice");
const lookups = { channels: [], teams: [], users: [] };
let rules = [];

const STAGES = {
  new: t("New"),
  lead: t("Lead"),
  qualified: t("Qualified"),
  customer: t("Customer"),
  lost: t("Lost"),
};
const PRIORITIES = {
  none: t("No priority"),
  low: t("Low"),
  medium: t("Medium"),
  high: t("High"),
  urgent: t("Urgent"),
};

function nameOf(kind, id) {
  return lookups[kind].find((item) => item.id === id)?.name ?? t("unknown");
}

function names(kind, ids) {
  return ids.map((id) => nameOf(kind, id)).join(", ");
}

/** A condition in a few words. */
function conditionText(condition) {
  switch (condition.type) {
    case "channel":
      return t("channel: {names}", { names: names("channels", condition.channel_ids) });
    case "text":
      return condition.operator === "matches"
        ? t("text matches {value}", { value: condition.value })
        : t("text contains “{value}”", { value: condition.value });
    case "contact_attribute":
      if (condition.operator === "is_set") return t("{key} is set", { key: condition.key });
      return condition.operator === "contains"
        ? t("{key} contains “{value}”", condition)
        : t("{key} is “{value}”", condition);
    case "lifecycle_stage":
      return t("stage: {names}", { names: condition.stages.map((s) => STAGES[s] ?? s).join(", ") });
    case "business_hours":
      return condition.inside ? t("inside business hours") : t("outside business hours");
    case "language":
      return t("language: {names}", { names: condition.languages.join(", ") });
    default:
      return condition.type;
  }
}

/** An action in a few words. */
function actionText(action) {
  switch (action.type) {
    case "assign_team":
      return t("assign to team {name}", { name: nameOf("teams", action.team_id) });
    case "assign_agent":
      return t("assign to {name}", { name: nameOf("users", action.user_id) });
    case "add_label":
      return t("label {label}", action);
    case "set_priority":
      return t("priority {priority}", { priority: PRIORITIES[action.priority] ?? action.priority });
    case "auto_reply":
      return t("automatic reply");
    case "escalate":
      return t("escalate to {name}", { name: nameOf("teams", action.team_id) });
    default:
      return action.type;
  }
}

const chip = (words) => el("span", { class: "rule__chip", dir: "auto" }, words);

function ruleItem(rule, index) {
  const item = clone("rule-item");
  item.dataset.id = rule.id;
  item.dataset.enabled = String(rule.enabled);
  item.setAttribute("aria-label", rule.name);
  setText(qs(".rule__position", item), String(index + 1));
  setText(qs(".rule__name", item), rule.name);
  qs("[data-badge=stop]", item).hidden = !rule.stop_processing;
  const problems = qs("[data-badge=problems]", item);
  problems.hidden = rule.problems.length === 0;
  problems.title = rule.problems.join("\n");
  const toggle = qs("[data-action=toggle-rule]", item);
  toggle.checked = rule.enabled;
  qs("[data-action=move-up]", item).disabled = index === 0;
  qs("[data-action=move-down]", item).disabled = index === rules.length - 1;

  const { all, any } = rule.conditions;
  const conditions = [...all.map((c) => chip(conditionText(c)))];
  if (any.length) {
    conditions.push(
      el("span", { class: "rule__word" }, all.length ? t("and one of") : t("one of")),
      ...any.map((c) => chip(conditionText(c))),
    );
  }
  if (!conditions.length) conditions.push(chip(t("every message")));
  replaceChildren(qs("[data-summary=conditions]", item), ...conditions);
  replaceChildren(qs("[data-summary=actions]", item), ...rule.actions.map((a) => chip(actionText(a))));
  return item;
}

async function loadRules() {
  rules = (await api.get("/routing-rules")).items;
  replaceChildren(list, ...rules.map(ruleItem));
  list.setAttribute("aria-busy", "false");
  qs("#rules-empty").hidden = rules.length > 0;
}

function ruleOf(node) {
  const item = node.closest(".rule");
  return { item, rule: rules.find((r) => r.id === item.dataset.id) };
}

/** Move a rule by `delta` places; focus stays on `action` of the moved rule. */
async function move(node, delta, action) {
  const { rule } = ruleOf(node);
  const to = rules.indexOf(rule) + delta;
  if (to < 0 || to >= rules.length) return;
  try {
    await api.patch(`/routing-rules/${rule.id}`, { position: to });
    await loadRules();
  } catch (err) {
    notify(notice, failure(err), false);
    return;
  }
  const item = qs(`.rule[data-id="${rule.id}"]`, list);
  const control = qs(`[data-action=${action}]`, item);
  (control && !control.disabled ? control : qs("[data-action^=move-]:not(:disabled)", item) ?? item).focus();
  notify(notice, t("“{name}” now runs {n}.", { name: rule.name, n: to + 1 }));
}

async function toggle(box) {
  const { rule } = ruleOf(box);
  try {
    await api.patch(`/routing-rules/${rule.id}`, { enabled: box.checked });
    rule.enabled = box.checked;
    box.closest(".rule").dataset.enabled = String(box.checked);
    notify(notice, box.checked ? t("“{name}” is on.", rule) : t("“{name}” is off.", rule));
  } catch (err) {
    box.checked = !box.checked;
    notify(notice, failure(err), false);
  }
}

async function remove(button) {
  const { rule } = ruleOf(button);
  if (!(await confirmDialog(t("Delete this rule?"), rule.name))) {
    button.focus();
    return;
  }
  try {
    await api.delete(`/routing-rules/${rule.id}`);
    await loadRules();
    notify(notice, t("“{name}” was deleted.", rule));
    (qs(".rule", list) ?? qs("[data-action=new-rule]")).focus();
  } catch (err) {
    notify(notice, failure(err), false);
  }
}

const editor = new RuleEditor(qs("#rule-editor"), lookups, async (saved) => {
  await loadRules();
  notify(notice, text("saved"));
  qs(`.rule[data-id="${saved.id}"] [data-action=edit-rule]`, list)?.focus();
});

async function edit(button) {
  const { rule } = ruleOf(button);
  try {
    editor.open(await api.get(`/routing-rules/${rule.id}`), button);
  } catch (err) {
    notify(notice, failure(err), false);
  }
}

on(list, "click", "[data-action=move-up]", (_e, b) => move(b, -1, "move-up"));
on(list, "click", "[data-action=move-down]", (_e, b) => move(b, 1, "move-down"));
on(list, "change", "[data-action=toggle-rule]", (_e, box) => toggle(box));
on(list, "click", "[data-action=delete-rule]", (_e, b) => remove(b));
on(list, "click", "[data-action=edit-rule]", (_e, b) => edit(b));
on(list, "keydown", (event) => {
  if (!event.altKey || !(event.key === "ArrowUp" || event.key === "ArrowDown")) return;
  if (!(event.target instanceof Element) || !event.target.closest(".rule")) return;
  event.preventDefault();
  const action = event.target.dataset.action ?? "move-up";
  move(event.target, event.key === "ArrowUp" ? -1 : 1, action);
});
on(document, "click", "[data-action=new-rule]", (_e, button) => editor.open(null, button));

async function start() {
  try {
    const [channels, teams, users] = await Promise.all([
      listAll("/channels"),
      listAll("/teams"),
      listAll("/users"),
    ]);
    lookups.channels = channels.map((c) => ({ id: c.id, name: c.name }));
    lookups.teams = teams.map((team) => ({ id: team.id, name: team.name }));
    lookups.users = users
      .filter((u) => u.is_active)
      .map((u) => ({ id: u.id, name: u.name ? `${u.name} (${u.email})` : u.email }));
    await loadRules();
    await new Policies(qs("#policies-panel"), lookups, notice).load();
  } catch (err) {
    notify(notice, failure(err), false);
  }
}

start();
