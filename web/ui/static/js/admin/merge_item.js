// One merge suggestion as the page's <template id="merge-item"> shows it: the two
// contacts side by side (identities, stage, value, tags, last activity), the identity
// both offered marked, and a choice of the one to keep.
import { append, el, icon, pageData, qs, setText } from "../dom.js";
import { t } from "../i18n.js";
import { fillTime } from "../time.js";
import { money } from "./pipeline_format.js";

const template = document.getElementById("merge-item");
const stageTitles = pageData("stage-titles") ?? {};
const KIND_ICONS = { email: "channel-email", phone: "channel-sms", telegram: "channel-telegram" };

/** "email:ann@example.com" as [kind, value]. */
export function splitReason(reason) {
  const colon = reason.indexOf(":");
  return colon < 0 ? ["", reason] : [reason.slice(0, colon), reason.slice(colon + 1)];
}

/** A contact's name as a message shows it. */
export function contactName(contact) {
  return contact?.name || t("Unnamed contact");
}

function fillSide(side, contact, fallback, shared, group) {
  const field = (name) => qs(`[data-field="${name}"]`, side);
  side.dataset.contactId = fallback.id;
  const name = field("name");
  name.href = `/contacts/${fallback.id}`;
  name.id = `merge-${group}-${fallback.id}`;
  setText(name, contactName(contact ?? fallback));
  const keep = field("keep");
  if (keep) {
    keep.name = `keep-${group}`;
    keep.value = fallback.id;
    keep.setAttribute("aria-describedby", name.id);
  }
  const identities = field("identities");
  for (const identity of contact?.identities ?? []) {
    const isShared = identity.kind === shared[0] && identity.value === shared[1];
    append(
      identities,
      el(
        "li",
        { class: "merge-side__identity", dataset: { shared: isShared } },
        icon(KIND_ICONS[identity.kind] ?? "user"),
        el("span", { dir: "auto" }, identity.value),
        isShared ? el("span", { class: "badge badge--accent" }, t("Matched")) : null,
      ),
    );
  }
  if (!identities.children.length) append(identities, el("li", { class: "muted" }, "—"));
  setText(field("stage"), contact ? (stageTitles[contact.lifecycle_stage] ?? contact.lifecycle_stage) : "—");
  setText(field("value"), contact?.lifetime_value ? money(contact.lifetime_value) : "—");
  setText(field("tags"), contact?.tags?.length ? contact.tags.join(", ") : "—");
  if (contact) fillTime(field("activity"), contact.last_activity_at);
}

/** The item of `suggestion`; `contacts` maps an id to its GET /contacts/{id} (or null). */
export function mergeItem(suggestion, contacts) {
  const node = template.content.firstElementChild.cloneNode(true);
  node.dataset.id = suggestion.id;
  const shared = splitReason(suggestion.reason);
  setText(qs('[data-field="reason"]', node), shared[1]);
  fillTime(qs('[data-field="created"]', node), suggestion.created_at);
  for (const key of ["contact", "other_contact"]) {
    const side = qs(`[data-side="${key}"]`, node);
    fillSide(side, contacts.get(suggestion[key].id), suggestion[key], shared, suggestion.id);
  }
  // The older record stays by default: the suggestion's first contact.
  const first = qs('[data-side="contact"] [data-field="keep"]', node);
  if (first) first.checked = true;
  return node;
}
