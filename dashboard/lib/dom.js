// Small DOM helpers. Text from the API is only ever set as text (never as HTML).

/**
 * Creates an element.
 *   h("td", { class: "num", dataset: { code }, title: "…" }, "text", otherNode)
 * Props: `class`, `text`, `dataset` (object), `style` (object), `on` (event → handler),
 * anything else is set as an attribute (boolean true: present, false/null: absent).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, stringValues(value));
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function stringValues(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null) out[k] = String(v);
  return out;
}

/** Appends children (nodes, strings, numbers, nested arrays; null/false skipped). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** The first element matching `selector` inside `root` (throws when absent: a page bug). */
export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`element not found: ${selector}`);
  return el;
}

/** Elements of a testid inside root. */
export function byTestId(id, root = document) {
  return $(`[data-testid="${id}"]`, root);
}

/** A small chip: "data demo", severities, states. */
export function chip(text, kind = "", title = "") {
  return h("span", { class: ["chip", kind && `chip-${kind}`], title: title || null }, text);
}
