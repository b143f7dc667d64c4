import { ApiError, api, forgetModels } from "./api.js";
import { $, showError } from "./dom.js";
import { session } from "./session.js";
import { playground } from "./playground.js";
import { compare } from "./compare.js";
import { conversations } from "./conversations.js";
import { usage } from "./usage.js";

// The views, by the name in the URL's hash (#/playground, …).
const views = { playground, compare, conversations, usage };
const DEFAULT_VIEW = "playground";

function showOnly(name) {
  for (const section of document.querySelectorAll("main > .view")) {
    section.hidden = section.id !== `view-${name}`;
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!session.key()) {
    $("nav").hidden = true;
    showOnly("sign-in");
    $("api-key").focus();
    return;
  }
  $("nav").hidden = false;
  const name = location.hash.replace(/^#\//, "");
  const view = views[name] ? name : DEFAULT_VIEW;
  showOnly(view);
  views[view].enter();
}

async function signIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  const error = $("sign-in-error");
  showError(error, null);
  if (!key) return;
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    // Any call that needs a key tells a good one from a bad one; the model list is needed anyway.
    await api("/api/v1/models", { key });
    session.signIn(key);
    $("api-key").value = "";
    forgetModels();
    // A new hash routes by itself (hashchange); an unchanged one needs routing here.
    if (views[location.hash.replace(/^#\//, "")]) route();
    else location.hash = `#/${DEFAULT_VIEW}`;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      error.textContent = `That API key was not accepted (${e.message}). Check it and try again.`;
      error.hidden = false;
    } else {
      showError(error, e);
    }
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  session.signOut();
  forgetModels();
  for (const view of Object.values(views)) view.reset?.();
  route();
}

$("sign-in-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
route();
