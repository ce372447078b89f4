// End-to-end tests: replicas of examples/chat behind nginx, real JavaScript
// clients.  Started by scripts/e2e, which passes the addresses and controls:
//   RR       nginx, round robin (WebSockets only, skipNegotiation)
//   STICKY   nginx, ip_hash (every transport)
//   R1, R2   the replicas directly;  R2_PID  replica 2's process id
//   PG_RESTART  a shell command restarting PostgreSQL;  PSQL  a psql command line
// Prints "ok N - ..." / "not ok N - ..." and ends with "N passed, N failed".
import { exec, execSync } from "node:child_process";
import { Client, sleep } from "./lib.mjs";

const env = process.env;
let passed = 0, failed = 0, n = 0;
async function test(name, fn) {
  n++;
  try {
    await fn();
    passed++;
    console.log(`ok ${n} - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok ${n} - ${name}\n#   ${String(e.stack || e).split("\n").slice(0, 3).join("\n#   ")}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const sql = (q) => execSync(`${env.PSQL} -X -q -At -c "${q.replace(/"/g, '\\"')}"`).toString().trim();

// Presence once it satisfies ok: a client's stop() returns before its server
// has run OnDisconnectedAsync, so earlier tests' connections may still be
// counted for a moment.  Returns the last answer (the caller asserts on it).
async function presenceWhen(client, ok, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const p = await client.conn.invoke("Presence", null);
    if (ok(p) || Date.now() > deadline) return p;
    await sleep(50);
  }
}

// clients placed on both replicas through round robin
async function spread(users) {
  const clients = [];
  for (const u of users) clients.push(await Client.connect(env.RR, u, "WebSockets", true));
  return clients;
}

await test("round robin with skipNegotiation spreads clients over both replicas", async () => {
  const cs = await spread(["a1", "a2", "a3", "a4"]);
  const servers = new Set(cs.map((c) => c.server));
  await Promise.all(cs.map((c) => c.stop()));
  assert(servers.size === 2, `all clients on ${[...servers]}`);
});

await test("every send kind reaches clients on the other replica", async () => {
  const [x, y, z, w] = await spread(["alice", "bob", "carol", "alice"]);
  assert(x.server !== y.server, "x and y on one replica");
  await x.conn.invoke("Send", "all");
  await Promise.all([x, y, z, w].map((c) => c.expect("all")));
  await x.conn.invoke("SendOthers", "others");
  await Promise.all([y, z, w].map((c) => c.expect("others")));
  await x.conn.invoke("SendAllExcept", [z.id], "all but z");
  await Promise.all([x, y, w].map((c) => c.expect("all but z")));
  await x.conn.invoke("SendToConnection", y.id, "to y");
  await y.expect("to y");
  await x.conn.invoke("SendToConnections", [y.id, z.id], "to y z");
  await Promise.all([y, z].map((c) => c.expect("to y z")));
  await x.conn.invoke("SendToUser", "alice", "to alice");
  await Promise.all([x, w].map((c) => c.expect("to alice")));
  await x.conn.invoke("SendToUsers", ["bob", "carol"], "to bob carol");
  await Promise.all([y, z].map((c) => c.expect("to bob carol")));
  await Promise.all([x.never("others"), z.never("all but z"), y.never("to alice")]);
  await Promise.all([x, y, z, w].map((c) => c.stop()));
});

await test("groups changed on another replica: group, groups, group-except", async () => {
  const [x, y, z] = await spread(["gx", "gy", "gz"]);
  const other = [y, z].find((c) => c.server !== x.server);
  assert(other, "no client on the other replica");
  await x.conn.invoke("AddToGroup", y.id, "room");   // x's replica changes y's groups
  await x.conn.invoke("AddToGroup", z.id, "room");
  await z.conn.invoke("Join", "lobby");
  await x.conn.invoke("SendToGroup", "room", "to room");
  await Promise.all([y, z].map((c) => c.expect("to room")));
  await x.conn.invoke("SendToGroupExcept", "room", [z.id], "room but z");
  await y.expect("room but z");
  await x.conn.invoke("SendToGroups", ["room", "lobby"], "room and lobby");
  await y.expect("room and lobby");
  await z.expect("room and lobby");
  await Promise.all([x.never("to room"), z.never("room but z"), z.never("room and lobby", 10)]);
  await Promise.all([x, y, z].map((c) => c.stop()));
});

await test("client results across replicas, and an unknown connection", async () => {
  const [x, y] = await spread(["qx", "qy"]);
  assert(x.server !== y.server, "same replica");
  const answer = await x.conn.invoke("Ask", y.id, "ping");
  assert(answer === "qy answers ping", `answer: ${answer}`);
  let error = "";
  try { await x.conn.invoke("Ask", "no-such-connection", "ping"); } catch (e) { error = String(e.message); }
  assert(error.includes("Connection 'no-such-connection' does not exist."), `error: ${error}`);
  await Promise.all([x, y].map((c) => c.stop()));
});

await test("presence counts connections of both replicas", async () => {
  const cs = await spread(["p1", "p2", "p3"]);
  const users = ["p1", "p2", "p3"];
  const p = await presenceWhen(cs[0], (p) => p.connections === 3 && users.every((u) => p.users.includes(u)));
  assert(p.connections === 3, `connections ${p.connections}`);
  assert(users.every((u) => p.users.includes(u)), `users ${p.users}`);
  await cs[2].stop();
  const q = await presenceWhen(cs[0], (q) => q.connections === 2 && !q.users.includes("p3"));
  assert(q.connections === 2, `after a disconnect: ${q.connections}`);
  assert(!q.users.includes("p3"), `p3 still online: ${q.users}`);
  await Promise.all(cs.slice(0, 2).map((c) => c.stop()));
});

await test("a database trigger's notification reaches the group on both replicas", async () => {
  const [x, y] = await spread(["nx", "ny"]);
  await x.conn.invoke("Join", "news");
  await y.conn.invoke("Join", "news");
  sql("INSERT INTO notifications (text) VALUES ('price changed')");
  await Promise.all([x, y].map((c) => c.expect("notify:price changed")));
  await Promise.all([x, y].map((c) => c.stop()));
});

await test("MessagePack clients on both replicas: sends from hubs and from a database trigger", async () => {
  const x = await Client.connect(env.RR, "mx", "WebSockets", true, true);
  let y = await Client.connect(env.RR, "my", "WebSockets", true, true);
  for (let i = 0; i < 6 && y.server === x.server; i++) {
    await y.stop();
    y = await Client.connect(env.RR, "my", "WebSockets", true, true);
  }
  assert(x.server !== y.server, "both MessagePack clients on one replica");
  const j = await Client.connect(env.RR, "mj", "WebSockets", true);   // and a JSON one
  await x.conn.invoke("Send", "to all from msgpack");
  await Promise.all([x, y, j].map((c) => c.expect("to all from msgpack")));
  await j.conn.invoke("SendToUser", "my", "json to msgpack");
  await y.expect("json to msgpack");
  // the trigger builds JSON in SQL; each replica gives its MessagePack clients their own form
  await Promise.all([x, y, j].map((c) => c.conn.invoke("Join", "news")));
  sql("INSERT INTO notifications (text) VALUES ('msgpack too')");
  await Promise.all([x, y, j].map((c) => c.expect("notify:msgpack too")));
  await Promise.all([x, y, j].map((c) => c.stop()));
});

for (const transport of ["WebSockets", "ServerSentEvents", "LongPolling"]) {
  await test(`sticky sessions (ip_hash), ${transport}: delivery to and from the other replica`, async () => {
    const viaNginx = await Client.connect(env.STICKY, "s1", transport);
    const direct = [await Client.connect(env.R1, "s2", transport), await Client.connect(env.R2, "s3", transport)];
    const other = direct.find((c) => c.server !== viaNginx.server);
    await viaNginx.conn.invoke("SendToConnection", other.id, "to other");
    await other.expect("to other");
    await other.conn.invoke("SendToUser", "s1", "back");
    await viaNginx.expect("back");
    await viaNginx.conn.invoke("Join", "sticky");
    await other.conn.invoke("SendToGroup", "sticky", "group via other");
    await viaNginx.expect("group via other");
    await Promise.all([viaNginx, ...direct].map((c) => c.stop()));
  });
}

await test("PostgreSQL restart under traffic: every send goes through, each message arrives once, in order", async () => {
  const x = await Client.connect(env.R1, "rx");
  const y = await Client.connect(env.R2, "ry");
  const accepted = [], refused = [];
  let stop = false, slowest = 0;
  const sender = (async () => {
    for (let i = 0; !stop; i++) {
      const t = Date.now();
      // the hub method waits while the adapter reconnects and sends again; it fails only after SendTimeout
      try { await x.conn.invoke("SendToConnection", y.id, `seq-${i}`); accepted.push(`seq-${i}`); }
      catch (e) { refused.push(`seq-${i}: ${e.message}`); }
      slowest = Math.max(slowest, Date.now() - t);
      await sleep(20);
    }
  })();
  await sleep(500);
  // asynchronously: the sender keeps invoking while PostgreSQL goes down and comes back
  await new Promise((resolve, reject) => exec(env.PG_RESTART, (e) => (e ? reject(e) : resolve())));
  await sleep(3000);
  stop = true;
  await sender;
  console.log(`# ${accepted.length} sends around the restart, ${refused.length} refused, slowest ${slowest} ms`);
  assert(refused.length === 0, `refused: ${refused.slice(0, 3).join("; ")}`);
  assert(accepted.length > 20, `only ${accepted.length} sends accepted`);
  const got = () => y.received.filter((m) => m.startsWith("seq-"));
  for (let w = 0; w < 150 && got().length < accepted.length; w++) await sleep(100);
  await sleep(300);   // anything delivered twice would come now
  assert(got().join() === accepted.join(),
    `received ${got().length} of ${accepted.length}, first difference at ${got().findIndex((m, k) => m !== accepted[k])}`);
  await Promise.all([x, y].map((c) => c.stop()));
});

await test("kill -9 of a replica: its connections leave presence within the TTL, its client results fail fast", async () => {
  const x = await Client.connect(env.R1, "kx");
  const y = await Client.connect(env.R2, "ky");
  y.conn.off("question");
  y.conn.on("question", () => new Promise(() => {}));   // never answers
  // only x and y: the earlier tests' disconnects have reached the registry
  const before = (await presenceWhen(x, (p) => p.connections === 2)).connections;
  assert(before === 2, `presence before the kill: ${before}`);
  const pending = x.conn.invoke("Ask", y.id, "are you there?").then(() => "answered", (e) => "failed: " + e.message);
  await sleep(300);
  const killedAt = Date.now();
  process.kill(Number(env.R2_PID), "SIGKILL");
  const outcome = await Promise.race([pending, sleep(20000).then(() => "still pending")]);
  const failedAfter = Date.now() - killedAt;
  assert(outcome.startsWith("failed"), `client result: ${outcome}`);
  const ttl = Number(env.TTL_MS);
  assert(failedAfter < ttl + 5000, `failed after ${failedAfter} ms (TTL ${ttl} ms)`);
  const after = (await presenceWhen(x, (p) => p.connections === before - 1)).connections;
  assert(after === before - 1, `presence ${before} -> ${after}`);
  await x.stop();
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
