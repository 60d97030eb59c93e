// The reason a contact is lost: asked in the page's <dialog id="lost-dialog"> (a lost
// contact needs one; the API refuses the move without it).
import { qs, setText } from "../dom.js";

const dialog = document.getElementById("lost-dialog");
const reason = qs("#lost-reason", dialog);

/** The reason typed, or null when the dialog is cancelled. */
export function askLostReason(name) {
  setText(qs('[data-field="who"]', dialog), name);
  reason.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "move" && reason.value.trim() ? reason.value.trim() : null),
      { once: true },
    );
  });
}
