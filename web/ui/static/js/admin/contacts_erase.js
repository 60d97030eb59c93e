// Erasing a contact's personal data (admins): a dialog that stays locked until the
// contact's name is typed, then POST /contacts/{id}/erase with the id as the API's own
// confirmation. Afterwards the page reloads the contact and shows the erased state.
import { api } from "../api.js";
import { on, qs, setText } from "../dom.js";
import { contactName, showNotice } from "./contacts_common.js";

/** What must be typed: the name shown in the header, compared loosely (case, spaces,
 * Unicode forms), so a Persian or Arabic name typed on another keyboard still matches. */
function loose(text) {
  return String(text ?? "").normalize("NFKC").trim().replace(/\s+/g, " ").toLocaleLowerCase();
}

export function wireErase(root, contactId, getContact, afterErase) {
  const dialog = qs("[data-erase-dialog]", root);
  const opener = qs("[data-action=erase]");
  if (!dialog || !opener) return;
  const form = qs("[data-erase-form]", dialog);
  const input = qs("[name=confirm]", form);
  const submit = qs("[data-erase-submit]", form);
  const error = qs("[data-erase-error]", form);
  let phrase = "";

  on(opener, "click", () => {
    const contact = getContact();
    if (!contact) return;
    phrase = contactName(contact);
    setText(qs("[data-erase-phrase]", form), phrase);
    input.value = "";
    submit.disabled = true;
    showNotice(error, null);
    dialog.showModal();
    input.focus();
  });
  on(input, "input", () => {
    submit.disabled = loose(input.value) !== loose(phrase);
  });
  on(form, "click", "[data-action=cancel-erase]", () => dialog.close());
  on(dialog, "close", () => opener.isConnected && opener.focus());
  on(form, "submit", async (event) => {
    event.preventDefault();
    if (loose(input.value) !== loose(phrase)) return;
    submit.disabled = true;
    try {
      await api.post(`/contacts/${contactId}/erase`, { confirm: contactId });
      dialog.close();
      await afterErase();
      qs("[data-contact-name]")?.focus();
    } catch (failure) {
      showNotice(error, failure);
      submit.disabled = false;
    }
  });
}
