// What the chosen channel can carry, shown while the agent writes: a character counter
// for channels with a text limit (SMS: 1,600; Telegram: 8 x 4,096), and a reply with files
// on a channel that cannot carry them (SMS) stopped before it is sent (a note may keep
// them). The server refuses the same replies with 422 (timeline/reply_limits.py); this
// only says so before the agent presses Send.
import { setText } from "../dom.js";
import { t } from "../i18n.js";

const channels = new Map(); // channel id -> its item of GET …/reply-channels

/** Keeps the reply channels' limits (the items of GET /conversations/{id}/reply-channels). */
export function rememberChannels(items) {
  channels.clear();
  for (const item of items) channels.set(item.channel_id, item);
}

/** Characters as the server counts them: code points, not UTF-16 units (an emoji is 1). */
function length(value) {
  let n = 0;
  for (const _ of value) n += 1;
  return n;
}

const number = (n) => new Intl.NumberFormat(document.documentElement.lang || undefined).format(n);

/** The limit a reply of `value` with `fileCount` files on `channelId` breaks, as a
 * message; null when none. */
export function limitBroken(channelId, value, fileCount) {
  const channel = channels.get(channelId);
  const limit = channel?.max_text_length;
  if (limit && length(value) > limit) {
    return t("Too long for this channel: at most {max} characters.", { max: number(limit) });
  }
  if (fileCount > 0 && channel && !channel.supports_attachments) {
    return t("This channel cannot send attachments");
  }
  return null;
}

/** Shows the counter (`counter`: its element) for the current mode and channel. */
export function showLimits(counter, mode, channelId, value) {
  const channel = mode === "reply" ? channels.get(channelId) : undefined;
  const limit = channel?.max_text_length;
  counter.hidden = !limit;
  if (limit) {
    const used = length(value);
    setText(counter, t("{n} of {max} characters", { n: number(used), max: number(limit) }));
    counter.dataset.over = String(used > limit);
  }
}
