import { ApiError, api, models, streamChat } from "./api.js";
import { $, h, showError } from "./dom.js";
import { integer, ms, rate, usd } from "./format.js";
import { messageItem, storedFacts } from "./transcript.js";

// The playground: one model, a conversation streamed turn by turn.
const state = { conversationId: null, controller: null };

function setConversation(id) {
  state.conversationId = id;
  const label = $("pg-conversation");
  label.textContent = id ? `Conversation ${id}` : "New conversation";
  if (id) label.dataset.conversationId = id;
  else delete label.dataset.conversationId;
}

export async function fillModelPicker(select) {
  const list = await models();
  if (select.options.length > 0) return list;
  for (const m of list.models) {
    if (m.wildcard) continue;
    select.append(h("option", { value: m.id, disabled: !m.available },
      m.available ? `${m.id} (${m.provider})` : `${m.id} (needs ${(m.missing_keys || []).join(", ")})`));
  }
  if ([...select.options].some((o) => o.value === list.default_model)) select.value = list.default_model;
  return list;
}

function numberField(id) {
  const raw = $(id).value.trim();
  return raw === "" ? undefined : Number(raw);
}

function setBusy(busy) {
  $("pg-send").disabled = busy;
  $("pg-stop").disabled = !busy;
  $("pg-new").disabled = busy;
}

async function send(event) {
  event.preventDefault();
  if (state.controller) return;
  const message = $("pg-message").value;
  if (!message.trim()) return;
  const model = $("pg-model").value;
  const body = { message, model, on_disconnect: "cancel" };
  const system = $("pg-system").value;
  if (system.trim() && !state.conversationId) body.system = system;
  const temperature = numberField("pg-temperature");
  if (temperature !== undefined) body.temperature = temperature;
  const maxTokens = numberField("pg-max-tokens");
  if (maxTokens !== undefined) body.max_tokens = maxTokens;
  if (state.conversationId) body.conversation_id = state.conversationId;

  showError($("pg-error"), null);
  $("pg-stats").textContent = "";
  const transcript = $("pg-transcript");
  transcript.append(messageItem("user", message).item);
  const answer = messageItem("assistant", "", { state: "waiting", model });
  transcript.append(answer.item);
  $("pg-message").value = "";

  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const started = performance.now();
  let firstToken = null;
  let tokenEvents = 0;
  let done = null;
  try {
    await streamChat(body, {
      signal: controller.signal,
      onEvent: ({ event: name, data }) => {
        if (name === "start") {
          setConversation(data.conversation_id);
          answer.item.dataset.messageId = data.message_id;
          answer.item.dataset.state = "streaming";
          answer.meta.textContent = `${data.provider} · ${data.deployment}`;
        } else if (name === "token") {
          if (firstToken === null) firstToken = performance.now();
          tokenEvents += 1;
          answer.body.append(data.text);
        } else if (name === "restart") {
          answer.body.textContent = "";
          answer.meta.textContent = `restarted on ${data.deployment}: ${data.reason}`;
        } else if (name === "done") {
          done = data;
        } else if (name === "error") {
          throw new ApiError(0, data.error?.type || "error", data.error?.message || "the stream failed");
        }
      },
    });
    if (!done) throw new ApiError(0, "incomplete", "the stream ended before its done event");
    const end = performance.now();
    const completion = done.usage?.completion_tokens ?? tokenEvents;
    const seconds = firstToken === null ? 0 : (end - firstToken) / 1000;
    answer.item.dataset.state = "done";
    const facts = [done.finish_reason || "no finish reason", `${integer(completion)} tokens`];
    if (done.cost_usd !== undefined) facts.push(usd(done.cost_usd));
    answer.meta.textContent = facts.join(" · ");
    const stats = $("pg-stats");
    stats.textContent = `Time to first token ${ms(firstToken === null ? null : firstToken - started)} · ${rate(completion, seconds)}`
      + ` · ${integer(completion)} tokens · total ${ms(end - started)}` + (done.cost_usd !== undefined ? ` · ${usd(done.cost_usd)}` : "");
    stats.dataset.ttftMs = firstToken === null ? "" : String(Math.round(firstToken - started));
    stats.dataset.tokensPerSecond = seconds > 0 ? (completion / seconds).toFixed(2) : "";
  } catch (e) {
    if (e.name === "AbortError") {
      answer.item.dataset.state = "stopped";
      answer.meta.textContent = "stopped: stored as cancelled";
    } else {
      controller.abort();  // an error event ends the stream, but a broken one may not have
      answer.item.dataset.state = "error";
      answer.meta.textContent = "failed";
      showError($("pg-error"), e);
    }
  } finally {
    state.controller = null;
    setBusy(false);
  }
}

function stop() {
  state.controller?.abort();
}

function startOver() {
  setConversation(null);
  $("pg-transcript").replaceChildren();
  $("pg-stats").textContent = "";
  showError($("pg-error"), null);
}

// Opens a stored conversation here so the next message continues it.
export async function continueConversation(id) {
  startOver();
  await fillModelPicker($("pg-model"));
  const conversation = await api(`/api/v1/conversations/${encodeURIComponent(id)}`);
  setConversation(conversation.id);
  if (conversation.system) $("pg-system").value = conversation.system;
  const select = $("pg-model");
  if (conversation.model && [...select.options].some((o) => o.value === conversation.model)) select.value = conversation.model;
  const transcript = $("pg-transcript");
  for (const m of conversation.messages) {
    // A multi-model turn stored one answer per run; only the selected one is its history.
    if (m.run && !m.run.selected) continue;
    transcript.append(messageItem(m.role, m.content, { state: m.status, model: m.model, facts: m.role === "assistant" ? storedFacts(m) : "" }).item);
  }
}

let wired = false;
export const playground = {
  enter() {
    if (!wired) {
      wired = true;
      $("playground-form").addEventListener("submit", send);
      $("pg-stop").addEventListener("click", stop);
      $("pg-new").addEventListener("click", startOver);
      // Enter sends, Shift+Enter is a new line (as in most chat tools).
      $("pg-message").addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          $("playground-form").requestSubmit();
        }
      });
    }
    fillModelPicker($("pg-model")).catch((e) => showError($("pg-error"), e));
  },
  reset() {
    stop();
    startOver();
    $("pg-model").replaceChildren();
  },
};

