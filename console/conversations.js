import { api } from "./api.js";
import { $, h, showError } from "./dom.js";
import { integer, when } from "./format.js";
import { continueConversation } from "./playground.js";
import { messageItem, storedFacts } from "./transcript.js";

// Conversations: the key's conversations newest first, a page at a time; open, continue, delete.
const PAGE_SIZE = 10;
const state = { nextCursor: null, openId: null, confirmingDelete: false };

function listItem(c) {
  const button = h("button", { type: "button", class: "conv", dataset: { id: c.id } },
    h("span", { class: "title" }, c.title || "(untitled)"),
    h("span", { class: "hint" }, `${c.model || "?"} · ${integer(c.message_count)} messages · ${when(c.updated_at)}`));
  button.addEventListener("click", () => open(c.id));
  return h("li", { dataset: { id: c.id } }, button);
}

async function loadPage(first) {
  const error = $("conv-error");
  showError(error, null);
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (!first && state.nextCursor) params.set("cursor", state.nextCursor);
  try {
    const page = await api(`/api/v1/conversations?${params}`);
    const list = $("conv-list");
    if (first) list.replaceChildren();
    for (const c of page.conversations) list.append(listItem(c));
    if (first && page.conversations.length === 0) list.append(h("li", { class: "hint empty" }, "No conversations yet."));
    state.nextCursor = page.next_cursor;
    $("conv-more").hidden = !page.next_cursor;
  } catch (e) {
    showError(error, e);
  }
}

function resetDeleteButton() {
  state.confirmingDelete = false;
  $("conv-delete").textContent = "Delete";
}

async function open(id) {
  showError($("conv-error"), null);
  try {
    const c = await api(`/api/v1/conversations/${encodeURIComponent(id)}`);
    state.openId = c.id;
    resetDeleteButton();
    const detail = $("conv-detail");
    detail.dataset.id = c.id;
    $("conv-title").textContent = c.title || "(untitled)";
    $("conv-meta").textContent = [c.model, c.system ? `system: ${c.system}` : null, `started ${when(c.created_at)}`].filter(Boolean).join(" · ");
    $("conv-messages").replaceChildren(...c.messages.map((m) =>
      messageItem(m.role, m.content, { state: m.status, model: m.model, facts: m.role === "assistant" ? storedFacts(m) : "" }).item));
    detail.hidden = false;
    for (const item of document.querySelectorAll("#conv-list li")) item.classList.toggle("open", item.dataset.id === c.id);
    $("conv-title").focus();
  } catch (e) {
    showError($("conv-error"), e);
  }
}

// Deleting takes a second press of the same button, so a slip of the finger loses nothing.
async function remove() {
  if (!state.openId) return;
  if (!state.confirmingDelete) {
    state.confirmingDelete = true;
    $("conv-delete").textContent = "Really delete?";
    return;
  }
  const id = state.openId;
  try {
    await api(`/api/v1/conversations/${encodeURIComponent(id)}`, { method: "DELETE" });
    state.openId = null;
    $("conv-detail").hidden = true;
    document.querySelector(`#conv-list li[data-id="${CSS.escape(id)}"]`)?.remove();
  } catch (e) {
    showError($("conv-error"), e);
  } finally {
    resetDeleteButton();
  }
}

async function continueHere() {
  if (!state.openId) return;
  const id = state.openId;
  location.hash = "#/playground";
  try {
    await continueConversation(id);
  } catch (e) {
    showError($("pg-error"), e);
  }
}

let wired = false;
export const conversations = {
  enter() {
    if (!wired) {
      wired = true;
      $("conv-more").addEventListener("click", () => loadPage(false));
      $("conv-refresh").addEventListener("click", () => loadPage(true));
      $("conv-delete").addEventListener("click", remove);
      $("conv-continue").addEventListener("click", continueHere);
      $("conv-title").tabIndex = -1;
    }
    loadPage(true);
  },
  reset() {
    state.openId = null;
    state.nextCursor = null;
    $("conv-list").replaceChildren();
    $("conv-detail").hidden = true;
  },
};
