// One card of the pipeline board, made from the page's <template id="pipeline-card">
// (its labels are translated on the server) and a card of GET /api/v1/pipeline.
import { qs, qsa, setText } from "../dom.js";
import { t } from "../i18n.js";
import { fillTime } from "../time.js";
import { money } from "./pipeline_format.js";

const template = document.getElementById("pipeline-card");

/** The card's element; its data stays on it (`data-id`, `data-stage`, `data-activity`). */
export function cardNode(card) {
  const node = template.content.firstElementChild.cloneNode(true);
  const field = (name) => qs(`[data-field="${name}"]`, node);
  node.dataset.id = card.id;
  node.dataset.activity = String(Date.parse(card.last_activity_at));

  const name = field("name");
  name.href = `/contacts/${card.id}`;
  name.id = `card-${card.id}`;
  setText(name, card.name || t("Unnamed contact"));
  name.draggable = false; // the card is dragged, not the link
  const identity = field("identity");
  setText(identity, card.identity ?? "");
  identity.hidden = !card.identity;
  const value = field("value");
  setText(value, card.lifetime_value ? money(card.lifetime_value) : "");
  value.closest(".pcard__fact").hidden = !card.lifetime_value;
  fillTime(field("activity"), card.last_activity_at);

  field("owner-box").hidden = !card.owner;
  if (card.owner) {
    setText(field("owner"), card.owner.name);
    setText(field("initial"), card.owner.name.slice(0, 1).toUpperCase());
  }
  const label = field("move-label");
  label.id = `move-${card.id}`;
  field("move").setAttribute("aria-labelledby", `${label.id} ${name.id}`);
  setStage(node, card.lifecycle_stage);
  return node;
}

/** Put the card in `stage`: its menu offers every other stage. */
export function setStage(node, stage) {
  node.dataset.stage = stage;
  for (const button of qsa("[data-action=move]", node)) button.hidden = button.dataset.stage === stage;
}

/** The name a message uses for the card. */
export function cardName(node) {
  return qs('[data-field="name"]', node).textContent;
}
