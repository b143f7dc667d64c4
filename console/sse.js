// A Server-Sent Events parser for a fetch() body: fetch can POST and send headers, which
// EventSource cannot. It follows the WHATWG rules the server's streams need: CR, LF or CRLF
// line ends, `event`, `data` (joined by LF), `id`, comments, and an event per blank line.
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.event = "";
    this.data = [];
    this.id = null;
  }

  push(chunk) {
    this.buffer += chunk;
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    let match;
    while ((match = lineEnd.exec(this.buffer)) !== null) {
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, match.index));
      start = lineEnd.lastIndex;
    }
    this.buffer = this.buffer.slice(start);
  }

  line(text) {
    if (text === "") {
      this.dispatch();
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
  }

  dispatch() {
    if (this.data.length > 0) {
      this.onEvent({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
    }
    this.event = "";
    this.data = [];
  }
}
