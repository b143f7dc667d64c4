import { api } from "./api.js";
import { $, h, showError } from "./dom.js";
import { integer, usd } from "./format.js";
import { PALETTE, stackedBars } from "./chart.js";

// Usage: the key's tokens and cost by day and model (GET /api/v1/usage, the last 30 days) as two
// charts and a table, and the key's limits.

// Every day from `from` to `to` inclusive, so quiet days show as gaps, not as missing bars.
function daysBetween(from, to) {
  const out = [];
  const end = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= end && out.length < 400; t += 86400000) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

function limitRows(limits) {
  if (!limits) return [h("dt", {}, "Limits"), h("dd", {}, "none: this key comes from CHAT_API_KEYS")];
  const rows = [
    ["Requests a minute", limits.rpm === null ? "no limit" : integer(limits.rpm)],
    ["Tokens a minute", limits.tpm === null ? "no limit" : integer(limits.tpm)],
    ["Answers at once", limits.max_streams === null ? "no limit" : integer(limits.max_streams)],
    ["Budget", limits.budget_usd === null ? "no limit" : `${usd(limits.budget_usd)} a ${limits.budget_period}`],
  ];
  if (limits.budget_usd !== null) {
    rows.push(["Spent this period", usd(limits.budget_spent_usd)]);
    rows.push(["Period resets in", `${Math.round((limits.budget_resets_in_s || 0) / 3600)} h`]);
  }
  rows.push(["Models", limits.models === null ? "all" : limits.models.join(", ")]);
  return rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);
}

async function load() {
  const error = $("usage-error");
  showError(error, null);
  let usage;
  try {
    usage = await api("/api/v1/usage");
  } catch (e) {
    showError(error, e);
    return;
  }
  const days = daysBetween(usage.from, usage.to);
  const models = [...new Set(usage.data.map((r) => r.model))].sort();
  const byKey = new Map(usage.data.map((r) => [`${r.day}|${r.model}`, r]));
  const row = (d, m) => byKey.get(`${d}|${m}`);
  const tokens = (d, m) => {
    const r = row(d, m);
    return r ? r.prompt_tokens + r.completion_tokens : 0;
  };
  const cost = (d, m) => Number(row(d, m)?.cost_usd ?? 0);

  $("usage-range").textContent = `${usage.from} to ${usage.to} (UTC days)`;
  const chart = $("usage-chart");
  const tokenBars = stackedBars({ title: "Tokens by day and model", days, models, value: tokens, format: (v) => integer(Math.round(v)) });
  tokenBars.dataset.series = "tokens";
  const costBars = stackedBars({ title: "Cost in USD by day and model", days, models, value: cost, format: (v) => `$${Number(v.toPrecision(3))}` });
  costBars.dataset.series = "cost";
  chart.replaceChildren(
    h("figure", {}, h("figcaption", {}, "Tokens"), tokenBars),
    h("figure", {}, h("figcaption", {}, "Cost (USD)"), costBars));

  $("usage-legend").replaceChildren(...models.map((m, k) =>
    h("li", {}, h("span", { class: `swatch swatch-${k % PALETTE.length}`, "aria-hidden": "true" }), m)));
  const t = usage.totals;
  $("usage-totals").textContent = `${integer(t.requests)} requests · ${integer(t.prompt_tokens + t.completion_tokens)} tokens`
    + ` (${integer(t.prompt_tokens)} prompt, ${integer(t.completion_tokens)} completion) · ${usd(t.cost_usd)}`
    + (t.estimated_requests ? ` · ${integer(t.estimated_requests)} with estimated tokens` : "");

  const body = $("usage-table").tBodies[0];
  body.replaceChildren(...[...usage.data].reverse().map((r) => h("tr", {},
    h("td", {}, r.day), h("td", {}, r.model), h("td", {}, integer(r.requests)),
    h("td", {}, integer(r.prompt_tokens + r.completion_tokens)), h("td", {}, usd(r.cost_usd)))));
  if (usage.data.length === 0) body.append(h("tr", {}, h("td", { colspan: 5, class: "hint" }, "Nothing used in this period.")));
  $("usage-limits").replaceChildren(...limitRows(usage.limits));
}

export const usage = {
  enter() {
    load();
  },
  reset() {
    $("usage-chart").replaceChildren();
    $("usage-limits").replaceChildren();
  },
};
