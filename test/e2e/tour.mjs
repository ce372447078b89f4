// The scripted tour of the chat sample (scripts/chat): clients on different
// replicas behind nginx exchange messages, join a group, ask each other,
// watch presence, and get a notification from a database trigger.
//   URL  nginx in front of the replicas;  PSQL  a psql command line
import { execSync } from "node:child_process";
import { Client, sleep } from "./lib.mjs";

const { URL: base, PSQL } = process.env;
const step = (t) => console.log(`\n== ${t}`);
const show = (c, what) => console.log(`   ${c.user.padEnd(6)} on ${c.server}: ${what}`);

step("alice, bob and carol connect through nginx (WebSockets, round robin)");
const people = [];
for (const u of ["alice", "bob", "carol"]) {
  const c = await Client.connect(base, u, "WebSockets", true);
  c.conn.on("message", (from, text) => show(c, `<${from}> ${text}`));
  c.conn.on("notify", (text) => show(c, `[news] ${text}`));
  people.push(c);
  show(c, `connected as ${c.id}`);
}
const [alice, bob, carol] = people;

step("alice says hello to everyone");
await alice.conn.invoke("Send", "hello everyone");
await sleep(500);

step("bob and carol join #pg (a group: any replica can add anyone, no round trip)");
await bob.conn.invoke("Join", "pg");
await alice.conn.invoke("AddToGroup", carol.id, "pg");
await alice.conn.invoke("SendToGroup", "pg", "welcome to #pg");
await sleep(500);

const far = people.find((c) => c.server !== alice.server) ?? carol;
step(`alice asks ${far.user} (on ${far.server}) a question and waits for the answer (a client result)`);
console.log(`   answer: ${await alice.conn.invoke("Ask", far.id, "are you there?")}`);

step("who is online, across both replicas");
let p = await alice.conn.invoke("Presence", "pg");
console.log(`   ${p.connections} connections; users ${p.users.sort().join(", ")}; #pg has ${p.group.length}`);

step("a row inserted in the database reaches the news group (a trigger calls signalr_bp.send_group)");
await bob.conn.invoke("Join", "news");
await carol.conn.invoke("Join", "news");
execSync(`${PSQL} -X -q -c "INSERT INTO notifications (text) VALUES ('the tour is almost over')"`);
await sleep(800);

step("carol leaves");
await carol.stop();
await sleep(300);
p = await alice.conn.invoke("Presence", null);
console.log(`   ${p.connections} connections; users ${p.users.sort().join(", ")}`);
await Promise.all([alice.stop(), bob.stop()]);
console.log("\ntour complete");
