import { session } from "./session.js";
import { SSEParser } from "./sse.js";

// An error as the API reports it: `{"error": {"type", "message"}}` and the HTTP status.
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
  }
}

async function errorFrom(response) {
  let type = `http_${response.status}`;
  let message = response.statusText || "the request failed";
  try {
    const body = await response.json();
    if (body && body.error) {
      type = body.error.type || type;
      message = body.error.message || message;
    }
  } catch {
    // Not JSON (a proxy's own page): the status says enough.
  }
  return new ApiError(response.status, type, message);
}

function headers(key, withBody) {
  const out = { Authorization: `Bearer ${key}` };
  if (withBody) out["Content-Type"] = "application/json";
  return out;
}

// One JSON request; resolves to the parsed body (null for 204), rejects with ApiError.
export async function api(path, { method = "GET", body, key = session.key(), signal } = {}) {
  const response = await fetch(path, {
    method,
    headers: headers(key, body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

// POST /api/v1/chat, calling onEvent({event, data}) for each SSE event as it arrives (data
// parsed as JSON). Rejects with ApiError when the server refuses the turn before streaming,
// and with an AbortError when `signal` aborts.
export async function streamChat(body, { signal, onEvent }) {
  const response = await fetch("/api/v1/chat", {
    method: "POST",
    headers: headers(session.key(), true),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await errorFrom(response);
  const parser = new SSEParser((e) => {
    let data = null;
    try {
      data = JSON.parse(e.data);
    } catch {
      data = { text: e.data };
    }
    onEvent({ event: e.event, data });
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(value);
  }
}

// The catalog's models, fetched once per sign-in.
let modelsPromise = null;
export function models() {
  if (!modelsPromise) {
    modelsPromise = api("/api/v1/models").catch((e) => {
      modelsPromise = null;
      throw e;
    });
  }
  return modelsPromise;
}
export function forgetModels() {
  modelsPromise = null;
}
