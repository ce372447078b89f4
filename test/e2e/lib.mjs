// Helpers shared by the end-to-end tests and the tour: real @microsoft/signalr clients.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

export const transports = {
  WebSockets: signalR.HttpTransportType.WebSockets,
  ServerSentEvents: signalR.HttpTransportType.ServerSentEvents,
  LongPolling: signalR.HttpTransportType.LongPolling,
};

export class Client {
  constructor(conn, user) {
    this.conn = conn;
    this.user = user;
    this.received = [];
    this.waiters = [];
    const record = (item) => {
      this.received.push(item);
      for (const w of [...this.waiters]) w();
    };
    conn.on("message", (from, text) => record(text));
    conn.on("notify", (text) => record("notify:" + text));
    conn.on("question", (q) => `${user} answers ${q}`);
  }

  // base: http://host:port; transport: a key of transports; skipNegotiation for WebSockets through round robin;
  // messagePack: the MessagePack hub protocol instead of JSON
  static async connect(base, user, transport = "WebSockets", skipNegotiation = false, messagePack = false) {
    let builder = new signalR.HubConnectionBuilder()
      .withUrl(`${base}/chat?user=${encodeURIComponent(user)}`, { transport: transports[transport], skipNegotiation })
      .configureLogging(signalR.LogLevel.None);
    if (messagePack) builder = builder.withHubProtocol(new MessagePackHubProtocol());
    const conn = builder.build();
    const c = new Client(conn, user);
    await conn.start();
    const me = await conn.invoke("WhoAmI");
    c.id = me.connectionId;
    c.server = me.server;
    return c;
  }

  // resolves when text arrived (consuming it), rejects after ms
  expect(text, ms = 10000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.received.indexOf(text);
        if (i >= 0) {
          this.received.splice(i, 1);
          this.waiters = this.waiters.filter((w) => w !== check);
          clearTimeout(timer);
          resolve();
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`${this.user} (${this.server}) did not receive "${text}"; has [${this.received.join(", ")}]`));
      }, ms);
      if (!check()) this.waiters.push(check);
    });
  }

  async never(text, ms = 400) {
    await new Promise((r) => setTimeout(r, ms));
    if (this.received.includes(text)) throw new Error(`${this.user} received "${text}" but should not have`);
  }

  stop() {
    return this.conn.stop();
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
