// Small DOM helpers that only ever set text and attributes: never innerHTML with data,
// so a customer's text can never become markup.

/**
 * Make an element: el("a", { href: "/inbox", class: "x", dataset: { id: "1" } }, "text", child)
 * Strings become text nodes; null/undefined/false children are skipped. Attribute values
 * are set with setAttribute (an "on…" attribute is refused: listen with on()).
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  append(node, ...children);
  return node;
}

/** Set attributes (`dataset` and `aria` objects expand; null or false removes). */
export function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "dataset") {
      for (const [key, v] of Object.entries(value)) node.dataset[key] = String(v);
    } else if (name === "aria") {
      for (const [key, v] of Object.entries(value)) setAttribute(node, `aria-${key}`, v);
    } else {
      setAttribute(node, name, value);
    }
  }
  return node;
}

function setAttribute(node, name, value) {
  if (/^on/i.test(name)) throw new Error(`refusing to set ${name}: use on()`);
  if (value === null || value === undefined || value === false) node.removeAttribute(name);
  else node.setAttribute(name, value === true ? "" : String(value));
}

/** Append children: nodes as they are, anything else as text. */
export function append(node, ...children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace an element's text. */
export function setText(node, text) {
  node.textContent = text === null || text === undefined ? "" : String(text);
  return node;
}

/** Remove every child. */
export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Replace every child with these. */
export function replaceChildren(node, ...children) {
  clear(node);
  return append(node, ...children);
}

export const qs = (selector, root = document) => root.querySelector(selector);
export const qsa = (selector, root = document) => [...root.querySelectorAll(selector)];

/**
 * Listen, optionally delegated: on(root, "click", "[data-action=x]", (event, target) => …).
 * Returns a function that stops listening.
 */
export function on(root, type, selectorOrHandler, maybeHandler) {
  const delegated = typeof selectorOrHandler === "string";
  const handler = delegated ? maybeHandler : selectorOrHandler;
  const listener = delegated
    ? (event) => {
        const target = event.target instanceof Element && event.target.closest(selectorOrHandler);
        if (target && root.contains(target)) handler(event, target);
      }
    : (event) => handler(event, root);
  root.addEventListener(type, listener);
  return () => root.removeEventListener(type, listener);
}

/** An icon of the sprite, as the `icon` template macro makes it. */
export function icon(name, label = null) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "icon");
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
  }
  const use = document.createElementNS(ns, "use");
  use.setAttribute("href", `${document.body.dataset.icons}#${name}`);
  svg.append(use);
  return svg;
}

/** Data a page left for its scripts in <script type="application/json" id=…>. */
export function pageData(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}
