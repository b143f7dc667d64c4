import { ApiError, api, models, streamChat } from "./api.js";
import { $, h, showError } from "./dom.js";
import { integer, ms, rate, usd } from "./format.js";

// Compare: up to four models answer the same message side by side (POST /api/v1/chat with
// `models`), and the user picks the run the conversation continues from.
const MAX_MODELS = 4;
const state = { conversationId: null, continueFrom: null, controller: null, runs: new Map() };

function chosenModels() {
  return [...document.querySelectorAll("#cmp-models input:checked")].map((box) => box.value);
}

// Past four picks, the other boxes are disabled rather than silently unticked.
function limitPicks() {
  const full = chosenModels().length >= MAX_MODELS;
  for (const box of document.querySelectorAll("#cmp-models input")) {
    box.disabled = box.dataset.unavailable === "1" || (full && !box.checked);
  }
}

async function fillModels() {
  const grid = $("cmp-models");
  const list = await models();
  // Checked after the wait: two quick visits must not both fill the grid.
  if (grid.childElementCount > 0) return;
  for (const m of list.models) {
    if (m.wildcard) continue;
    const id = `cmp-model-${m.id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const box = h("input", { type: "checkbox", id, name: "models", value: m.id, dataset: { unavailable: m.available ? "0" : "1" } });
    box.disabled = !m.available;
    box.addEventListener("change", limitPicks);
    grid.append(h("div", { class: "pick" }, box, h("label", { for: id }, m.id)));
  }
}

function setConversation(id) {
  state.conversationId = id;
  const label = $("cmp-conversation");
  label.textContent = id ? `Conversation ${id}` + (state.continueFrom ? ` · continuing from run ${state.continueFrom}` : "") : "New conversation";
  if (id) label.dataset.conversationId = id;
  else delete label.dataset.conversationId;
}

function runColumn(run) {
  const text = h("div", { class: "text" });
  const stats = h("p", { class: "stats" });
  const status = h("p", { class: "status" }, "waiting");
  const choose = h("button", { type: "button", class: "choose", disabled: true }, "Continue from this");
  const column = h("article", { class: "run card", dataset: { run: run.run, model: run.model, state: "waiting" } },
    h("h3", {}, run.model), h("p", { class: "hint" }, `${run.provider} · ${run.deployment}`), status, text, stats, choose);
  const entry = { ...run, column, text, stats, status, choose, started: performance.now(), firstToken: null, tokenEvents: 0 };
  choose.addEventListener("click", () => select(entry));
  return entry;
}

function markSelected(runId) {
  for (const entry of state.runs.values()) {
    const chosen = entry.run === runId;
    entry.column.classList.toggle("selected", chosen);
    entry.column.dataset.selected = chosen ? "1" : "0";
    entry.choose.textContent = chosen ? "Selected" : "Continue from this";
    entry.choose.setAttribute("aria-pressed", chosen ? "true" : "false");
  }
}

async function select(entry) {
  showError($("cmp-error"), null);
  try {
    const answer = await api(`/api/v1/conversations/${encodeURIComponent(state.conversationId)}/runs/${encodeURIComponent(entry.run)}/select`, { method: "POST" });
    state.continueFrom = answer.selected_run;
    markSelected(answer.selected_run);
    setConversation(state.conversationId);
  } catch (e) {
    showError($("cmp-error"), e);
  }
}

function onEvent({ event: name, data }) {
  if (name === "start") {
    // A server without multi-model turns answers with one model and no runs.
    if (!Array.isArray(data.runs)) throw new ApiError(0, "unsupported", "this server does not compare models (its start event has no runs)");
    setConversation(data.conversation_id);
    const area = $("cmp-runs");
    area.replaceChildren();
    area.dataset.turnId = data.turn_id;
    state.runs.clear();
    for (const run of data.runs) {
      const entry = runColumn(run);
      state.runs.set(run.run, entry);
      area.append(entry.column);
    }
    return;
  }
  if (name === "end") {
    for (const r of data.runs) {
      const entry = state.runs.get(r.run);
      if (entry && r.status === "complete") entry.choose.disabled = false;
    }
    if (data.selected_run) {
      state.continueFrom = data.selected_run;
      markSelected(data.selected_run);
    }
    setConversation(data.conversation_id);
    $("cmp-runs").dataset.ended = "1";
    return;
  }
  const entry = state.runs.get(data.run);
  if (!entry) return;
  if (name === "token") {
    if (entry.firstToken === null) entry.firstToken = performance.now();
    entry.tokenEvents += 1;
    entry.text.append(data.text);
    entry.column.dataset.state = "streaming";
    entry.status.textContent = "streaming";
  } else if (name === "restart") {
    entry.text.textContent = "";
    entry.status.textContent = `restarted on ${data.deployment}: ${data.reason}`;
  } else if (name === "done") {
    const completion = data.usage?.completion_tokens ?? entry.tokenEvents;
    const seconds = data.ttft_ms !== null && data.latency_ms ? (data.latency_ms - data.ttft_ms) / 1000 : 0;
    entry.column.dataset.state = data.status;
    entry.column.dataset.costUsd = data.cost_usd ?? "";
    entry.status.textContent = data.status === "complete" ? `complete (${data.finish_reason || "no finish reason"})` : data.status;
    entry.stats.textContent = `TTFT ${ms(data.ttft_ms)} · ${ms(data.latency_ms)} total · ${rate(completion, seconds)}`
      + ` · ${integer(completion)} tokens · ${usd(data.cost_usd)}`;
  } else if (name === "error") {
    entry.column.dataset.state = "error";
    entry.status.textContent = "failed";
    entry.stats.textContent = `${data.error?.type}: ${data.error?.message}`;
  }
}

async function send(event) {
  event.preventDefault();
  if (state.controller) return;
  const picked = chosenModels();
  const message = $("cmp-message").value;
  if (picked.length < 1 || !message.trim()) {
    showError($("cmp-error"), new ApiError(0, "invalid_request", "pick at least one model and write a message"));
    return;
  }
  const body = { message, models: picked, mode: $("cmp-mode").value, on_disconnect: "cancel" };
  if (state.conversationId) body.conversation_id = state.conversationId;
  if (state.conversationId && state.continueFrom) body.continue_from = state.continueFrom;
  showError($("cmp-error"), null);
  delete $("cmp-runs").dataset.ended;
  const controller = new AbortController();
  state.controller = controller;
  $("cmp-send").disabled = true;
  $("cmp-stop").disabled = false;
  try {
    await streamChat(body, { signal: controller.signal, onEvent });
    $("cmp-message").value = "";
  } catch (e) {
    if (e.name !== "AbortError") showError($("cmp-error"), e);
    for (const entry of state.runs.values()) {
      if (entry.column.dataset.state === "streaming" || entry.column.dataset.state === "waiting") {
        entry.column.dataset.state = "stopped";
        entry.status.textContent = "stopped";
      }
    }
  } finally {
    state.controller = null;
    $("cmp-send").disabled = false;
    $("cmp-stop").disabled = true;
  }
}

function startOver() {
  state.continueFrom = null;
  state.runs.clear();
  setConversation(null);
  $("cmp-runs").replaceChildren();
  showError($("cmp-error"), null);
}

let wired = false;
export const compare = {
  enter() {
    if (!wired) {
      wired = true;
      $("compare-form").addEventListener("submit", send);
      $("cmp-stop").addEventListener("click", () => state.controller?.abort());
      $("cmp-new").addEventListener("click", startOver);
    }
    fillModels().catch((e) => showError($("cmp-error"), e));
  },
  reset() {
    state.controller?.abort();
    startOver();
    $("cmp-models").replaceChildren();
  },
};
