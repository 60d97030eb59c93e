// Moving cards between columns: drag and drop with a pointer, the card's "Move to…" menu
// with a keyboard (or a touch screen, where dragging would fight scrolling).
import { on, qs, qsa } from "../dom.js";

/** Calls `move(card, stage)` when a card is dropped on another column or picked from its menu. */
export function enableMoves(board, move) {
  let dragged = null;
  const unmark = () => qsa("[data-over]", board).forEach((column) => delete column.dataset.over);

  on(board, "dragstart", ".pcard", (event, card) => {
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.id);
    card.dataset.dragging = "true";
  });
  on(board, "dragend", ".pcard", (event, card) => {
    delete card.dataset.dragging;
    dragged = null;
    unmark();
  });
  on(board, "dragover", ".pipeline__column", (event, column) => {
    if (!dragged) return;
    event.preventDefault(); // this column accepts the drop
    event.dataTransfer.dropEffect = "move";
    if (column.dataset.over !== "true") {
      unmark();
      if (column.dataset.stage !== dragged.dataset.stage) column.dataset.over = "true";
    }
  });
  on(board, "dragleave", ".pipeline__column", (event, column) => {
    if (!column.contains(event.relatedTarget)) delete column.dataset.over;
  });
  on(board, "drop", ".pipeline__column", (event, column) => {
    event.preventDefault();
    unmark();
    const card = dragged;
    dragged = null;
    if (card && column.dataset.stage !== card.dataset.stage) move(card, column.dataset.stage);
  });

  // The menu: one open at a time; Escape or a click elsewhere closes it.
  const closeMenus = (except = null) => {
    for (const menu of qsa(".pcard__move[open]", board)) if (menu !== except) menu.open = false;
  };
  board.addEventListener("toggle", (event) => {
    if (event.target.matches?.(".pcard__move") && event.target.open) closeMenus(event.target);
  }, true);
  on(document, "click", (event) => {
    if (!event.target.closest?.(".pcard__move")) closeMenus();
  });
  on(board, "keydown", ".pcard__move[open]", (event, menu) => {
    if (event.key !== "Escape") return;
    event.stopPropagation();
    menu.open = false;
    qs("summary", menu).focus();
  });
  on(board, "click", "[data-action=move]", (event, button) => {
    const menu = button.closest(".pcard__move");
    menu.open = false;
    move(button.closest(".pcard"), button.dataset.stage, { focus: true });
  });
}
