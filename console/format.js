export function integer(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}

// Costs are exact decimal strings from the API; shown as given, trimmed of trailing zeros.
export function usd(value) {
  if (value === null || value === undefined) return "–";
  const s = String(value);
  const trimmed = s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  return `$${trimmed}`;
}

export function ms(n) {
  return n === null || n === undefined ? "–" : `${Math.round(n)} ms`;
}

export function rate(tokens, seconds) {
  if (!tokens || !(seconds > 0)) return "–";
  return `${(tokens / seconds).toFixed(1)} tok/s`;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString("en-GB", { timeZone: "UTC", dateStyle: "medium", timeStyle: "short" }) + " UTC";
}
