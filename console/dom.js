// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so nothing a model or
// a user writes can become markup.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function $(id) {
  return document.getElementById(id);
}

export function showError(el, error) {
  if (!error) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  el.textContent = describeError(error);
  el.hidden = false;
}

// "type: message", as the API reports errors; a network failure says so.
export function describeError(error) {
  if (error && error.type) return `${error.type}: ${error.message}`;
  if (error instanceof TypeError) return `network error: ${error.message}`;
  return String((error && error.message) || error);
}
