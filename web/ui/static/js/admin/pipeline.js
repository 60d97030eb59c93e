// The lead pipeline board (templates/admin/pipeline/board.html): a column per lifecycle
// stage with its count and lifetime value, cards newest activity first, "show more" per
// column. A move changes the contact's stage with PATCH /contacts/{id}; the card moves at
// once and goes back, with a message, if the change is refused. Others' changes (a move,
// a new lead from a form, a merge, an erase) redraw the board live.
import { api } from "../api.js";
import { append, on, qs, qsa, setText } from "../dom.js";
import { t } from "../i18n.js";
import { live } from "../live.js";
import { cardName, cardNode, setStage } from "./pipeline_card.js";
import { enableMoves } from "./pipeline_drag.js";
import { askLostReason } from "./pipeline_lost.js";
import { count, failure, money } from "./pipeline_format.js";

const PAGE = 20;
const MAX_CARDS = 100; // the API's most cards per stage
const REDRAW_GAP_MS = 1500; // a burst of news (an import, a busy form) is one redraw
const OWN_NEWS_MS = 5000; // how long the echo of our own move is ignored
const board = qs(".pipeline");
const notice = qs("#pipeline-notice");
const filters = JSON.parse(board.dataset.query);
const columns = new Map(
  qsa(".pipeline__column", board).map((node) => [
    node.dataset.stage,
    { node, list: qs("[data-cards]", node), cursor: null, count: 0 },
  ]),
);

function say(text, { bad = false } = {}) {
  notice.classList.toggle("notice--bad", bad);
  notice.classList.toggle("notice--good", !bad);
  notice.setAttribute("role", bad ? "alert" : "status");
  setText(notice, text);
}

function showFigures(stage, figures) {
  const column = columns.get(stage);
  column.count = figures.count;
  setText(qs("[data-count]", column.node), count(figures.count));
  const total = qs("[data-total]", column.node);
  total.dataset.none = String(figures.totals.length === 0);
  setText(total, figures.totals.map(money).join(" + ") || "—");
}

function showCount(stage, delta) {
  const column = columns.get(stage);
  column.count += delta;
  setText(qs("[data-count]", column.node), count(column.count));
}

function refreshColumn(stage) {
  const column = columns.get(stage);
  qs("[data-empty]", column.node).hidden = column.list.children.length > 0;
  qs("[data-action=more]", column.node).hidden = column.cursor === null;
}

/** Put a card in a column where its last activity sorts it (newest first). */
function place(node, stage) {
  const list = columns.get(stage).list;
  const at = Number(node.dataset.activity);
  const before = [...list.children].find((other) => other !== node && Number(other.dataset.activity) < at);
  list.insertBefore(node, before ?? null);
}

function addCards(stage, cards) {
  const list = columns.get(stage).list;
  for (const card of cards) {
    // A card moved here by hand may come again with a later page.
    if (qs(`.pcard[data-id="${card.id}"]`, board)) continue;
    append(list, cardNode(card));
  }
}

async function load() {
  board.setAttribute("aria-busy", "true");
  try {
    const data = await api.get("/pipeline", { ...filters, cards: PAGE });
    for (const column of data.stages) {
      showFigures(column.stage, column);
      columns.get(column.stage).cursor = column.next_cursor;
      addCards(column.stage, column.cards);
      refreshColumn(column.stage);
    }
  } catch (error) {
    say(t("The board could not be loaded: {reason}", { reason: failure(error) }), { bad: true });
  } finally {
    board.setAttribute("aria-busy", "false");
  }
}

async function refreshFigures() {
  try {
    const data = await api.get("/pipeline", { ...filters, cards: 0 });
    for (const column of data.stages) showFigures(column.stage, column);
  } catch {
    // The counts moved with the card already; the totals catch up on the next move.
  }
}

async function showMore(stage, button) {
  const column = columns.get(stage);
  button.disabled = true;
  try {
    const page = await api.get("/pipeline/cards", { ...filters, stage, cursor: column.cursor, limit: PAGE });
    addCards(stage, page.items);
    column.cursor = page.next_cursor;
  } catch (error) {
    say(t("The board could not be loaded: {reason}", { reason: failure(error) }), { bad: true });
  } finally {
    button.disabled = false;
    refreshColumn(stage);
  }
}

async function move(node, stage, { focus = false } = {}) {
  const from = node.dataset.stage;
  if (stage === from || node.getAttribute("aria-busy") === "true") return;
  const name = cardName(node);
  const title = qs("[data-stage-title]", columns.get(stage).node).textContent;
  const body = { lifecycle_stage: stage };
  if (stage === "lost") {
    const reason = await askLostReason(name);
    if (reason === null) return;
    body.lost_reason = reason;
  }
  ownMoves.set(node.dataset.id, Date.now());
  movesMade += 1;
  const home = { list: node.parentElement, next: node.nextElementSibling };
  const refocus = () => focus && qs("summary", node).focus();
  place(node, stage);
  setStage(node, stage);
  showCount(from, -1);
  showCount(stage, +1);
  refreshColumn(from);
  refreshColumn(stage);
  refocus();
  node.setAttribute("aria-busy", "true");
  try {
    await api.patch(`/contacts/${node.dataset.id}`, body);
    say(t("Moved {name} to {stage}.", { name, stage: title }));
  } catch (error) {
    home.list.insertBefore(node, home.next?.parentElement === home.list ? home.next : null);
    setStage(node, from);
    showCount(stage, -1);
    showCount(from, +1);
    refreshColumn(from);
    refreshColumn(stage);
    refocus();
    say(t("{name} could not be moved: {reason}", { name, reason: failure(error) }), { bad: true });
  } finally {
    node.removeAttribute("aria-busy");
  }
  await refreshFigures();
}

// --- live ---------------------------------------------------------------------------

const ownMoves = new Map(); // contact id -> when we moved it (its event is only our echo)
let movesMade = 0; // a redraw fetched before a move of ours would undo it on screen
let redrawTimer = null;
let lastRedraw = 0;

/** Something on the board is being worked on: a move asked, dragged, or in flight. */
function unsettled() {
  return Boolean(
    qs('.pcard[aria-busy="true"], .pcard[data-dragging], .pcard__move[open]', board) ||
      qs("#lost-dialog[open]"),
  );
}

function redrawSoon() {
  if (redrawTimer !== null) return;
  const wait = Math.max(0, lastRedraw + REDRAW_GAP_MS - Date.now());
  redrawTimer = setTimeout(() => {
    redrawTimer = null;
    redraw().catch(() => {});
  }, wait);
}

/** Load the board again, as many cards per column as are shown, keeping the focus. */
async function redraw() {
  lastRedraw = Date.now(); // also paces the retries while the board is unsettled
  if (unsettled()) return redrawSoon();
  const shown = Math.max(PAGE, ...[...columns.values()].map((column) => column.list.children.length));
  const before = movesMade;
  const data = await api.get("/pipeline", { ...filters, cards: Math.min(shown, MAX_CARDS) });
  if (unsettled() || movesMade !== before) return redrawSoon(); // what we fetched is older
  const focusedId = document.activeElement?.closest?.(".pcard")?.dataset.id;
  for (const column of data.stages) {
    const shownColumn = columns.get(column.stage);
    showFigures(column.stage, column);
    shownColumn.cursor = column.next_cursor;
    shownColumn.list.replaceChildren(...column.cards.map(cardNode));
    refreshColumn(column.stage);
  }
  if (focusedId) qs(`.pcard[data-id="${focusedId}"] summary`, board)?.focus();
}

function heard(data) {
  const at = ownMoves.get(data.contact_id);
  if (at !== undefined && Date.now() - at < OWN_NEWS_MS) return;
  ownMoves.delete(data.contact_id);
  redrawSoon();
}

for (const type of ["contact.created", "contact.updated", "contact.merged", "contact.erased"]) {
  live.on(type, heard);
}
live.on("resync", redrawSoon);

enableMoves(board, move);
on(board, "click", "[data-action=more]", (event, button) => {
  showMore(button.closest(".pipeline__column").dataset.stage, button);
});
load();
