import { h } from "./dom.js";
import { integer, ms, usd } from "./format.js";

// One message of a transcript: who said it, its text, and a line of facts about an answer.
export function messageItem(role, text, { state, model, facts } = {}) {
  const body = h("div", { class: "text" }, text || "");
  const meta = h("div", { class: "meta" }, facts || "");
  const item = h("li", { class: `msg ${role}`, dataset: { role, state: state || "" } },
    h("div", { class: "role" }, role === "user" ? "You" : model || "Assistant"), body, meta);
  return { item, body, meta };
}

// The facts line of a stored answer (GET /api/v1/conversations/{id}).
export function storedFacts(message) {
  const parts = [message.status];
  if (message.usage) parts.push(`${integer(message.usage.total_tokens)} tokens`);
  if (message.ttft_ms !== null && message.ttft_ms !== undefined) parts.push(`TTFT ${ms(message.ttft_ms)}`);
  if (message.latency_ms !== null && message.latency_ms !== undefined) parts.push(`${ms(message.latency_ms)} total`);
  if (message.run) {
    parts.push(`run ${message.run.id}`);
    if (message.run.cost_usd !== undefined) parts.push(usd(message.run.cost_usd));
    if (message.run.selected) parts.push("selected");
  }
  if (message.error) parts.push(message.error);
  return parts.join(" · ");
}
