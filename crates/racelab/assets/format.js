// Small DOM and number helpers shared by the page's modules.

/** Builds an element: el("td", {class: "n", "data-field": "lost"}, "3"). Attributes set to null or false
 *  are left out; children may be strings, nodes, or arrays of them. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A number exactly as the run's JSON has it (so the page and the JSON can be compared digit for
 *  digit), or an em dash for null (a counter that could not be read). */
export function shown(value) {
  return value === null || value === undefined ? "—" : String(value);
}

/** {"deadlock": 1, "busy": 2} -> "deadlock 1, busy 2"; empty -> "". */
export function kinds(counts) {
  return Object.entries(counts || {})
    .map(([kind, n]) => `${kind.replaceAll("_", " ")} ${n}`)
    .join(", ");
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** Empties a node and fills it again. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}
