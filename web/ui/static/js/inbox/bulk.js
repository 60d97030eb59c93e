// The bulk bar: what to do with the selected conversations, through
// POST /api/v1/conversations/bulk (each conversation changed on its own).
import { api } from "../api.js";
import { el, on, qs, qsa, replaceChildren, setText } from "../dom.js";
import { t } from "../i18n.js";

/**
 * Wire the bulk bar of `root`. `selection()` gives the selected conversations (their
 * ConversationOut), `done(okIds)` is called after a change went through.
 */
export function setupBulk(root, { me, selection, done }) {
  const bar = qs("[data-bulk]", root);
  const message = qs("[data-bulk-message]", root);
  const people = qs("[data-bulk-people]", bar);

  async function apply(changes) {
    const ids = selection().map((item) => item.id);
    if (!ids.length) return;
    for (const menu of qsa("details[open]", bar)) menu.open = false;
    setText(message, t("Changing {n}…", { n: ids.length }));
    try {
      const { results } = await api.post("/conversations/bulk", { ids, changes });
      const ok = results.filter((result) => result.status === 200).map((result) => result.id);
      const failed = results.length - ok.length;
      setText(
        message,
        failed
          ? t("{ok} changed, {failed} could not be changed.", { ok: ok.length, failed })
          : t("{n} changed.", { n: ok.length }),
      );
      done(ok);
    } catch (err) {
      setText(message, err.message || t("The change did not go through. Try again."));
    }
  }

  on(bar, "click", "[data-bulk-action]", (_event, button) => {
    const action = button.dataset.bulkAction;
    if (action === "assign-me") apply({ assignee_id: me });
    else if (action === "resolve") apply({ status: "resolved" });
  });
  on(bar, "click", "[data-assign-to]", (_event, button) => {
    apply({ assignee_id: button.dataset.assignTo === "none" ? null : button.dataset.assignTo });
  });
  on(qs("[data-bulk-label]", bar), "submit", (event) => {
    event.preventDefault();
    const input = qs("input[name=label]", event.target);
    const label = input.value.trim();
    if (!label) return;
    input.value = "";
    apply({ add_labels: [label] });
  });

  // The people list: who can see every selected conversation's channel.
  const assignMenu = qs("[data-bulk-menu=assign]", bar);
  on(assignMenu, "toggle", async () => {
    if (!assignMenu.open) return;
    replaceChildren(people, el("li", { class: "muted bulk__person" }, t("Loading people…")));
    const channels = [...new Set(selection().map((item) => item.channel_id))];
    try {
      const lists = await Promise.all(channels.map((id) => api.get("/directory/users", { channel_id: id })));
      const everywhere = lists.reduce(
        (common, list) => common.filter((user) => list.items.some((other) => other.id === user.id)),
        lists[0]?.items ?? [],
      );
      replaceChildren(
        people,
        everywhere.map((user) =>
          el(
            "li",
            {},
            el(
              "button",
              { class: "bulk__person", type: "button", dataset: { assignTo: user.id, presence: user.presence } },
              el("span", { class: "bulk__presence", "aria-hidden": "true" }),
              el("span", { dir: "auto" }, user.name),
            ),
          ),
        ),
        el("li", {}, el("button", { class: "bulk__person", type: "button", dataset: { assignTo: "none" } }, t("Nobody (unassign)"))),
      );
      qs("button", people)?.focus();
    } catch {
      replaceChildren(people, el("li", { class: "muted bulk__person" }, t("The people could not be loaded.")));
    }
  });

  return {
    /** Show or hide the bar for `count` selected of `shown`. */
    update(count, shown) {
      bar.hidden = count === 0;
      setText(qs("[data-bulk-count]", bar), t("{n} selected", { n: count }));
      const all = qs("[data-select-all]", bar);
      all.checked = count > 0 && count === shown;
      all.indeterminate = count > 0 && count < shown;
      all.setAttribute("aria-label", t("Select all shown conversations"));
    },
  };
}
