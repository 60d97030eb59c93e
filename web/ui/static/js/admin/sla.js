// The SLA policy editor (templates/admin/policies/sla_edit.html): targets typed as an
// amount and a unit are sent in seconds to /api/v1/sla-policies (POST when new, PATCH
// when changed); the schedules listed under "Measured in" narrow to those of the chosen
// channels and teams.
import { api } from "../api.js";
import { on, qs, qsa } from "../dom.js";
import { submitting } from "./policies_forms.js";

const UNIT = { minutes: 60, hours: 3600, days: 86400 };
const form = qs("#sla-form");

function target(field) {
  const raw = qs(".target__amount", field).value.trim();
  if (raw === "") return null;
  return Math.round(Number(raw) * UNIT[qs(".target__unit", field).value]);
}

const checked = (name) => qsa(`input[name=${name}]:checked`, form).map((input) => input.value);

function narrowCalendars() {
  const chosen = new Set([...checked("channel_ids"), ...checked("team_ids")]);
  for (const item of qsa("[data-members]", form)) {
    const members = item.dataset.members.split(" ").filter(Boolean);
    item.hidden = chosen.size > 0 && !members.some((id) => chosen.has(id));
  }
}

function position() {
  const raw = qs("#sla-position").value.trim();
  // Anything but a whole number goes as typed, for the API to name the field.
  return raw === "" ? 0 : /^-?\d+$/.test(raw) ? Number(raw) : raw;
}

if (form) {
  on(form, "change", "input[name=channel_ids], input[name=team_ids]", narrowCalendars);
  narrowCalendars();
  submitting(form, () => {
    const body = {
      name: qs("#sla-name").value.trim(),
      position: position(),
      enabled: qs("#sla-enabled").checked,
      channel_ids: checked("channel_ids"),
      team_ids: checked("team_ids"),
      priorities: checked("priorities"),
    };
    for (const field of qsa("[data-target]", form)) body[field.dataset.target] = target(field);
    const id = form.dataset.id;
    return id ? api.patch(`/sla-policies/${id}`, body) : api.post("/sla-policies", body);
  });
}
