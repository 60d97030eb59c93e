// Mention tokens in notes: `@[Display Name](user:<id>)` (inbox/mentions.py) shows as a
// readable "@Display Name" chip. Built from text nodes and attributes only (dom.js).
import { el } from "./dom.js";

// The server's pattern (inbox/mentions.py _TOKEN), global here.
const TOKEN = /@\[([^[\]\r\n]*)\]\(user:([^()\s]*)\)/g;

/** The text with each mention token as its readable "@Name" (for one-line previews). */
export function mentionText(text) {
  return String(text ?? "").replace(TOKEN, (_, name) => `@${name}`);
}

/** The text as nodes: plain runs as strings, each mention as a chip <span>. */
export function mentionNodes(text) {
  const source = String(text ?? "");
  const nodes = [];
  let last = 0;
  for (const match of source.matchAll(TOKEN)) {
    if (match.index > last) nodes.push(source.slice(last, match.index));
    nodes.push(
      el("span", { class: "mention", dir: "auto", dataset: { userId: match[2] } }, `@${match[1]}`),
    );
    last = match.index + match[0].length;
  }
  if (last < source.length) nodes.push(source.slice(last));
  return nodes;
}
