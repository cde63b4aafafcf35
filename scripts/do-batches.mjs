// Prints how many batches the local runtime's Network objects have applied, read from their
// SQLite files under DIR (a `--persist-to` directory's v3/do). Each network's `seen` record keeps,
// per isolate, every batch number it applied: `seen` in a network's own object, `@{aff_id}/seen`
// for each network in a shared one. Used by `make bench` to count Durable Object requests.
//
//   node scripts/do-batches.mjs DIR      (Node 22.5+ for node:sqlite)
import { readdirSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import v8 from "node:v8";

const dir = process.argv[2];
if (!dir) throw new Error("usage: do-batches.mjs DIR");
const files = readdirSync(dir, { recursive: true }).filter((f) => f.endsWith(".sqlite"));
let batches = 0;
for (const file of files) {
  const db = new DatabaseSync(path.join(dir, file), { readOnly: true });
  try {
    const rows = db
      .prepare("SELECT value FROM _cf_KV WHERE key = 'seen' OR (key LIKE '@%' AND key LIKE '%/seen')")
      .all();
    for (const row of rows) {
      // workerd stores values in V8's serialization format.
      const seen = JSON.parse(v8.deserialize(Buffer.from(row.value)));
      for (const [upto, above] of Object.values(seen)) batches += upto + above.length;
    }
  } catch (e) {
    if (!String(e).includes("no such table")) throw e;
  } finally {
    db.close();
  }
}
console.log(batches);
