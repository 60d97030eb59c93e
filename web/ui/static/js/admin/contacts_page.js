// One contact (templates/admin/contacts/contact.html): the header, the details, tags and
// custom attributes to edit (PATCH /contacts/{id}), the identities, the activity below
// (contacts_activity.js) and the erasure (contacts_erase.js). An erased contact's page
// shows `data-erased="true"` on .app, which hides every editor (admin_contacts.css).
import { api } from "../api.js";
import { el, icon, on, qs, qsa, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";
import { initials } from "../inbox/row.js";
import { loadAll, refreshTimeline, wireActivity } from "./contacts_activity.js";
import { wireErase } from "./contacts_erase.js";
import {
  contactName,
  data,
  identityNode,
  showFieldErrors,
  showNotice,
  stageName,
  tagChip,
  userName,
} from "./contacts_common.js";

const root = qs("[data-contact-page]");
const app = qs(".app");
const contactId = root?.dataset.contactId;
let contact = null;

// --- showing -----------------------------------------------------------------------------

function showHeader() {
  const name = contactName(contact);
  setText(qs("[data-contact-name]"), contact.erased && !contact.name ? t("Erased contact") : name);
  document.title = `${name} · Switchboard`;
  // Letters of the name; a person icon for an erased contact or a name without letters.
  replaceChildren(qs("[data-initials]"), (!contact.erased && initials(name)) || icon("user"));
  setText(qs("[data-stage]"), stageName(contact.lifecycle_stage));
  setText(qs("[data-owner]"), contact.owner_id ? userName(contact.owner_id) : t("No owner"));
  replaceChildren(qs("[data-head-tags]"), ...contact.tags.map((tag) => tagChip(tag)));
  qs("[data-erased-badge]").hidden = !contact.erased;
  qs("[data-erased-notice]", root).hidden = !contact.erased;
  app.dataset.erased = String(contact.erased);
  root.dataset.erased = String(contact.erased);
}

// A live reload (another person's change) must not undo what the user is typing: a form
// edited since it was last filled keeps its values until it is saved.
const EDITABLE = "[data-details-form], [data-attributes-form]";
const edited = (form) => form.dataset.edited === "true";

function fillDetails() {
  const form = qs("[data-details-form]", root);
  if (edited(form)) return;
  form.elements.namedItem("name").value = contact.name ?? "";
  form.elements.namedItem("lifecycle_stage").value = contact.lifecycle_stage;
  form.elements.namedItem("lost_reason").value = contact.lost_reason ?? "";
  const owner = form.elements.namedItem("owner_id");
  owner.value = contact.owner_id ?? "";
  // An owner no longer active is not offered, but stays shown until changed.
  if (contact.owner_id && owner.value !== contact.owner_id) {
    owner.append(el("option", { value: contact.owner_id }, userName(contact.owner_id)));
    owner.value = contact.owner_id;
  }
  showLostReason();
}

function showLostReason() {
  const form = qs("[data-details-form]", root);
  qs("[data-lost-reason]", form).hidden = form.elements.namedItem("lifecycle_stage").value !== "lost";
}

function showTags() {
  replaceChildren(
    qs("[data-tags]", root),
    ...contact.tags.map((tag) =>
      tagChip(
        tag,
        el(
          "button",
          { class: "tag-chip__remove", type: "button", "data-action": "remove-tag", "data-tag": tag, "aria-label": t("Remove the tag {tag}", { tag }) },
          "×",
        ),
      ),
    ),
  );
}

function fillAttributes() {
  const form = qs("[data-attributes-form]", root);
  if (!form || edited(form)) return;
  for (const holder of qsa("[data-attribute]", form)) {
    const value = contact.attributes[holder.dataset.attribute];
    if (holder.dataset.type === "money") {
      qs("[name=amount]", holder).value = value?.amount ?? "";
      qs("[name=currency]", holder).value = value?.currency ?? "";
    } else {
      qs("[name=value]", holder).value = value === undefined || value === null ? "" : String(value);
    }
  }
}

function showIdentities() {
  const list = qs("[data-identities]", root);
  replaceChildren(
    list,
    ...(contact.identities.length
      ? contact.identities.map((identity) => {
          const item = identityNode(identity, "li");
          if (identity.display_name && identity.display_name !== identity.value) {
            item.append(el("span", { class: "muted identity__name", dir: "auto" }, identity.display_name));
          }
          return item;
        })
      : [el("li", { class: "list-empty muted" }, t("No identities."))]),
  );
}

function show(next) {
  contact = next;
  showHeader();
  showIdentities();
  if (contact.erased) return;
  fillDetails();
  showTags();
  fillAttributes();
}

async function loadContact() {
  show(await api.get(`/contacts/${contactId}`));
}

// --- editing -----------------------------------------------------------------------------

function status(form, text) {
  setText(qs("[data-status]", form), text);
}

async function change(form, patch) {
  showFieldErrors(form, null);
  showNotice(qs("[data-error]", root), null);
  status(form, "");
  try {
    const saved = await api.patch(`/contacts/${contactId}`, patch);
    delete form.dataset.edited;
    show(saved);
    status(form, t("Changes saved."));
    refreshTimeline(root, contactId);
    return true;
  } catch (error) {
    if (!showFieldErrors(form, error)) showNotice(qs("[data-error]", root), error);
    return false;
  }
}

function detailsPatch(form) {
  const patch = {};
  const name = form.elements.namedItem("name").value.trim() || null;
  if (name !== (contact.name ?? null)) patch.name = name;
  const stage = form.elements.namedItem("lifecycle_stage").value;
  const reason = form.elements.namedItem("lost_reason").value.trim() || null;
  if (stage !== contact.lifecycle_stage || (stage === "lost" && reason !== contact.lost_reason)) {
    patch.lifecycle_stage = stage;
    if (stage === "lost") patch.lost_reason = reason;
  }
  const owner = form.elements.namedItem("owner_id").value || null;
  if (owner !== (contact.owner_id ?? null)) patch.owner_id = owner;
  return patch;
}

function attributeValue(holder) {
  const type = holder.dataset.type;
  if (type === "money") {
    const amount = qs("[name=amount]", holder).value.trim();
    const currency = qs("[name=currency]", holder).value.trim().toUpperCase();
    return amount || currency ? { amount, currency } : null;
  }
  const raw = qs("[name=value]", holder).value;
  if (raw.trim() === "") return null;
  if (type === "number") return Number(raw);
  if (type === "boolean") return raw === "true";
  return type === "text" ? raw.trim() : raw;
}

function attributesPatch(form) {
  const changes = {};
  for (const holder of qsa("[data-attribute]", form)) {
    const key = holder.dataset.attribute;
    const value = attributeValue(holder);
    const before = contact.attributes[key] ?? null;
    if (JSON.stringify(value) !== JSON.stringify(before)) changes[key] = value;
  }
  return changes;
}

function wireEditors() {
  root.addEventListener("input", (event) => {
    const form = event.target.closest(EDITABLE);
    if (form) form.dataset.edited = "true";
  });
  const details = qs("[data-details-form]", root);
  on(details, "change", "[name=lifecycle_stage]", showLostReason);
  on(details, "submit", async (event) => {
    event.preventDefault();
    const patch = detailsPatch(details);
    if (Object.keys(patch).length) await change(details, patch);
    else status(details, t("Nothing to save."));
  });

  const tags = qs("[data-tag-form]", root);
  const tagBox = tags.closest(".tags-editor");
  on(tags, "submit", async (event) => {
    event.preventDefault();
    const input = tags.elements.namedItem("tag");
    const tag = input.value.trim();
    if (!tag) return;
    if (await change(tagBox, { add_tags: [tag] })) {
      input.value = "";
      input.focus();
    }
  });
  on(root, "click", "[data-action=remove-tag]", (event, button) => {
    change(tagBox, { remove_tags: [button.dataset.tag] });
    qs("[name=tag]", tags).focus();
  });

  const attributes = qs("[data-attributes-form]", root);
  if (attributes) {
    on(attributes, "submit", async (event) => {
      event.preventDefault();
      const changes = attributesPatch(attributes);
      if (Object.keys(changes).length) await change(attributes, { attributes: changes });
      else status(attributes, t("Nothing to save."));
    });
  }
}

// --- start -------------------------------------------------------------------------------

async function start() {
  wireEditors();
  wireActivity(root, contactId);
  wireErase(root, contactId, () => contact, () => Promise.all([loadContact(), loadAll(root, contactId)]));
  try {
    await loadContact();
  } catch (error) {
    showNotice(qs("[data-error]", root), error);
  }
  await loadAll(root, contactId);
  root.setAttribute("aria-busy", "false");
  const reload = () => loadContact().catch(() => {});
  live.on("resync", () => {
    reload();
    loadAll(root, contactId);
  });
  live.on("contact.updated", (event) => event.contact_id === contactId && reload());
  live.on("contact.erased", (event) => event.contact_id === contactId && reload());
}

if (root && data.contact_id) start();
