// The team screen (templates/admin/team/index.html): invite agents, edit an agent (name,
// role, channels, capacity, active), create, edit and delete teams. Everything goes
// through the JSON API; after a change the page is loaded again, so it always shows
// what is stored. The one thing shown only once, an invitation link, stays in its
// dialog until the admin is done with it.
import { api, ApiError } from "../api.js";
import { on, pageData, qs, qsa, setText } from "../dom.js";
import { t } from "../i18n.js";
import { absoluteTime } from "../time.js";

const data = pageData("team-data") ?? { agents: [], teams: [] };
const strings = pageData("team-strings") ?? {};
const agents = new Map(data.agents.map((agent) => [agent.id, agent]));
const teams = new Map(data.teams.map((team) => [team.id, team]));

function reload(done = "saved") {
  window.location.assign(`/settings/team?done=${done}`);
}

function fill(template, params) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// --- dialogs and their errors ---------------------------------------------------------------

function open(dialog) {
  clearErrors(dialog);
  dialog.showModal();
}

function clearErrors(root) {
  for (const node of qsa("[data-error]", root)) setText(node, "");
  for (const input of qsa("[aria-invalid]", root)) input.removeAttribute("aria-invalid");
  for (const field of qsa(".field--invalid", root)) field.classList.remove("field--invalid");
}

const CONFLICTS = [
  [/no active admin/, () => t("Someone must remain an active admin.")],
  [/already exists|exists already/, () => t("A user with this email exists already.")],
  [/team named/, () => t("A team with this name exists already.")],
];

/** Show what went wrong in the dialog: marked fields for 422, a sentence otherwise. */
function showError(dialog, error) {
  const box = qs("[data-error]", dialog);
  if (error instanceof ApiError && error.status === 422) {
    let marked = 0;
    for (const name of Object.keys(error.fields)) {
      const input = qs(`[name="${name.split(".")[0]}"]`, dialog);
      if (!input) continue;
      input.setAttribute("aria-invalid", "true");
      input.closest(".field")?.classList.add("field--invalid");
      marked += 1;
    }
    if (marked) {
      setText(box, strings.check);
      return;
    }
  }
  if (error instanceof ApiError && error.status === 409) {
    const known = CONFLICTS.find(([pattern]) => pattern.test(error.message));
    if (known) {
      setText(box, known[1]());
      return;
    }
  }
  setText(box, fill(strings.failed, { reason: error.message }));
}

/** Run `work` with the dialog's buttons disabled; errors are shown in the dialog. */
async function busy(dialog, work) {
  const buttons = qsa("button", dialog);
  for (const button of buttons) button.disabled = true;
  clearErrors(dialog);
  try {
    await work();
  } catch (error) {
    showError(dialog, error);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

for (const dialog of qsa("dialog")) {
  on(dialog, "click", "[data-action=close]", () => dialog.close());
}

function checkedValues(form, name) {
  return qsa(`input[name="${name}"]:checked`, form).map((input) => input.value);
}

function check(form, name, values) {
  const wanted = new Set(values);
  for (const input of qsa(`input[name="${name}"]`, form)) input.checked = wanted.has(input.value);
}

// --- invitations ----------------------------------------------------------------------------

const inviteDialog = qs("#invite-dialog");
const inviteForm = qs("#invite-form");
const linkView = qs("#invite-link");
let linkShown = false;

function showLink(created) {
  linkShown = true;
  inviteForm.hidden = true;
  linkView.hidden = false;
  const text = t("Send this link to {email}. It works once, until {date}.", {
    email: created.user.email,
    date: absoluteTime(created.invitation.expires_at),
  });
  setText(qs("[data-link-text]", linkView), text);
  const field = qs("#invite-url");
  field.value = created.url;
  setText(qs("[data-copied]", linkView), "");
  field.focus();
  field.select();
}

on(document, "click", "[data-action=invite]", () => {
  linkShown = false;
  inviteForm.reset();
  inviteForm.hidden = false;
  linkView.hidden = true;
  open(inviteDialog);
  qs("#invite-email").focus();
});

on(inviteForm, "submit", async (event) => {
  event.preventDefault();
  const form = new FormData(inviteForm);
  const body = {
    email: String(form.get("email")).trim(),
    role: form.get("role"),
    channel_ids: checkedValues(inviteForm, "channel_ids"),
  };
  const name = String(form.get("name")).trim();
  if (name) body.name = name;
  await busy(inviteDialog, async () => showLink(await api.post("/invitations", body)));
});

on(document, "click", "[data-action=relink]", async (event, button) => {
  button.disabled = true;
  try {
    const created = await api.post(`/users/${button.dataset.userId}/invitation`);
    inviteForm.hidden = true;
    open(inviteDialog);
    showLink(created);
  } catch (error) {
    setText(qs("#team-notice"), fill(strings.failed, { reason: error.message }));
    qs("#team-notice").className = "notice notice--bad";
  } finally {
    button.disabled = false;
  }
});

on(linkView, "click", "[data-action=copy]", async () => {
  const field = qs("#invite-url");
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    // Without the clipboard API (an insecure origin), the selection can still be copied.
    field.select();
    document.execCommand("copy");
  }
  setText(qs("[data-copied]", linkView), strings.copied);
});

on(linkView, "click", "[data-action=done]", () => inviteDialog.close());
inviteDialog.addEventListener("close", () => {
  if (linkShown) reload();
});

// --- an agent -------------------------------------------------------------------------------

const agentDialog = qs("#agent-dialog");
const agentForm = qs("#agent-form");
let agent = null;

on(document, "click", "[data-action=edit-agent]", (event, button) => {
  agent = agents.get(button.dataset.userId);
  if (!agent) return;
  agentForm.reset();
  setText(qs("[data-email]", agentDialog), agent.email);
  agentForm.elements.name.value = agent.name;
  agentForm.elements.role.value = agent.role;
  check(agentForm, "channel_ids", agent.channel_ids);
  const { own, max_open: maxOpen } = agent.capacity;
  const choice = !own ? "default" : maxOpen === null ? "unlimited" : "limit";
  agentForm.elements.capacity.value = choice;
  agentForm.elements.max_open.value = maxOpen ?? "";
  qs("[data-action=deactivate]", agentDialog).hidden = !agent.active;
  qs("[data-action=reactivate]", agentDialog).hidden = agent.active;
  open(agentDialog);
});

// Typing a limit chooses it.
on(agentForm.elements.max_open, "input", () => {
  agentForm.elements.capacity.value = "limit";
});

function sameSet(a, b) {
  return a.length === b.length && a.every((item) => b.includes(item));
}

on(agentForm, "submit", async (event) => {
  event.preventDefault();
  const form = new FormData(agentForm);
  await busy(agentDialog, async () => {
    const changes = {};
    const name = String(form.get("name")).trim();
    if (name !== agent.name) changes.name = name || null;
    if (form.get("role") !== agent.role) changes.role = form.get("role");
    if (Object.keys(changes).length) await api.patch(`/users/${agent.id}`, changes);
    const channels = checkedValues(agentForm, "channel_ids");
    if (!sameSet(channels, agent.channel_ids)) {
      await api.put(`/users/${agent.id}/channels`, { channel_ids: channels });
    }
    await saveCapacity(form);
    reload();
  });
});

async function saveCapacity(form) {
  const choice = form.get("capacity");
  const { own, max_open: maxOpen } = agent.capacity;
  const path = `/agents/${agent.id}/capacity`;
  if (choice === "default") {
    if (own) await api.delete(path);
  } else if (choice === "unlimited") {
    if (!own || maxOpen !== null) await api.put(path, { max_open: null });
  } else {
    const raw = String(form.get("max_open")).trim();
    const limit = /^\d+$/.test(raw) ? Number(raw) : raw;
    if (!own || limit !== maxOpen) await api.put(path, { max_open: limit });
  }
}

async function setActive(active) {
  await busy(agentDialog, async () => {
    await api.patch(`/users/${agent.id}`, { is_active: active });
    reload();
  });
}

on(agentDialog, "click", "[data-action=deactivate]", () => setActive(false));
on(agentDialog, "click", "[data-action=reactivate]", () => setActive(true));

// --- teams ----------------------------------------------------------------------------------

const teamDialog = qs("#team-dialog");
const teamForm = qs("#team-form");
let team = null;

function openTeam(chosen) {
  team = chosen;
  teamForm.reset();
  const title = chosen ? teamDialog.dataset.titleEdit : teamDialog.dataset.titleNew;
  setText(qs("#team-title"), title);
  teamForm.elements.name.value = chosen?.name ?? "";
  teamForm.elements.description.value = chosen?.description ?? "";
  check(teamForm, "member_ids", chosen?.member_ids ?? []);
  open(teamDialog);
  teamForm.elements.name.focus();
}

on(document, "click", "[data-action=new-team]", () => openTeam(null));
on(document, "click", "[data-action=edit-team]", (event, button) => {
  openTeam(teams.get(button.dataset.teamId) ?? null);
});

on(teamForm, "submit", async (event) => {
  event.preventDefault();
  const form = new FormData(teamForm);
  const description = String(form.get("description")).trim();
  const body = {
    name: String(form.get("name")).trim(),
    description: description || null,
    member_ids: checkedValues(teamForm, "member_ids"),
  };
  await busy(teamDialog, async () => {
    if (team) await api.patch(`/teams/${team.id}`, body);
    else await api.post("/teams", body);
    reload();
  });
});

const confirmDialog = qs("#confirm-dialog");
const confirmForm = qs("#confirm-form");
let doomed = null;

on(document, "click", "[data-action=delete-team]", (event, button) => {
  doomed = teams.get(button.dataset.teamId);
  if (!doomed) return;
  const text = t("{name} will be deleted. Its members stay, but lose the channels they had only through it.", {
    name: doomed.name,
  });
  setText(qs("[data-confirm-text]", confirmDialog), text);
  open(confirmDialog);
});

on(confirmForm, "submit", async (event) => {
  event.preventDefault();
  await busy(confirmDialog, async () => {
    await api.delete(`/teams/${doomed.id}`);
    reload("deleted");
  });
});
