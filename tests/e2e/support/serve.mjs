// Runs Workers in workerd through Miniflare, on 127.0.0.1, without wrangler dev's proxy in front
// (that proxy costs several times the throughput, so tests and benches talk to workerd's own socket).
//
//   node tests/e2e/support/serve.mjs --persist DIR [--port N] [--var NAME=VALUE ...] [--bare-port N]
//                                [--bare-logging-port N] [--bare-rust-port N]
//                                [--bare-rust-logging-port N] [--analytics BINDING]
//
// Serves build/ (the clickgate Worker) with the KV binding and vars of wrangler.toml, KV persisted
// under DIR/v3/kv (where `wrangler kv key put --local --persist-to DIR` writes). With --bare-port it
// also serves benches/bare-worker.js, the baseline the benchmarks compare against; with
// --bare-logging-port, benches/bare-logging-worker.js (that baseline plus a log line per click). With
// --bare-rust-port and --bare-rust-logging-port, the same two as Rust/wasm Workers built as clickgate
// is (target/bare-rust-worker/, scripts/build-bare-rust-worker.sh). With
// --analytics, BINDING is an Analytics Engine dataset that prints every data point it is given as
// an `analytics_point` line (the local runtime's own dataset keeps nothing, so a test could not see
// what was written).
// Prints `clickgate <url>` (then `bare <url>`, `bare-logging <url>`, `bare-rust <url>`,
// `bare-rust-logging <url>`, those asked for) once ready; stops on SIGTERM,
// SIGINT or stdin closing.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const args = process.argv.slice(2);
const opts = { port: 0, vars: {}, persist: null, barePort: null, bareLoggingPort: null,
  bareRustPort: null, bareRustLoggingPort: null, analytics: null };
for (let i = 0; i < args.length; i++) {
  const need = () => {
    if (i + 1 >= args.length) throw new Error(`${args[i]} needs a value`);
    return args[++i];
  };
  switch (args[i]) {
    case "--port": opts.port = Number(need()); break;
    case "--bare-port": opts.barePort = Number(need()); break;
    case "--bare-logging-port": opts.bareLoggingPort = Number(need()); break;
    case "--bare-rust-port": opts.bareRustPort = Number(need()); break;
    case "--bare-rust-logging-port": opts.bareRustLoggingPort = Number(need()); break;
    case "--persist": opts.persist = path.resolve(need()); break;
    case "--analytics": opts.analytics = need(); break;
    case "--var": {
      const [k, ...v] = need().split("=");
      opts.vars[k] = v.join("=");
      break;
    }
    default: throw new Error(`unknown option ${args[i]}`);
  }
}
if (!opts.persist) throw new Error("--persist DIR is required");

const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8");
const tomlValue = (key) => toml.match(new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, "m"))?.[1];
const compatibilityDate = tomlValue("compatibility_date");
const kvId = toml.match(/binding\s*=\s*"CLICKGATE_CONFIG"\s*\n\s*id\s*=\s*"([^"]+)"/)?.[1];
if (!compatibilityDate || !kvId) throw new Error("wrangler.toml: compatibility_date or the CLICKGATE_CONFIG id not found");

// A fixed request.cf, so nothing is fetched from the network; tests set their own headers.
const cf = { asn: 64496, asOrganization: "clickgate test", country: "DE", colo: "FRA" };

const worker = {
  name: "clickgate",
  modules: true,
  scriptPath: path.join(root, "build/entry.mjs"),
  modulesRoot: path.join(root, "build"),
  modulesRules: [
    { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  compatibilityDate,
  kvNamespaces: { CLICKGATE_CONFIG: kvId },
  durableObjects: { NETWORK: { className: "Network", useSQLite: true } },
  bindings: { CONFIG_REFRESH_SECONDS: "30", COUNTS_FLUSH_MS: "1000", ...opts.vars },
};
const workers = [worker];
if (opts.analytics) {
  worker.wrappedBindings = { [opts.analytics]: "analytics-recorder" };
  workers.push({
    name: "analytics-recorder",
    modules: true,
    script: `export default function () {
      return { writeDataPoint(point) { console.log(JSON.stringify({ event: "analytics_point", ...point })); } };
    }`,
  });
}
// workerd's output goes on whole lines at a time, as many as have arrived, not one `console.log` per
// line as Miniflare's default does. Under wrk that default took 14% of a core re-printing the
// decision log, CPU the Worker under measurement then lacks on a small machine; this takes 11%.
function forwardLines(from, to) {
  let partial = "";
  from.setEncoding("utf8");
  from.on("data", (chunk) => {
    const text = partial + chunk;
    const end = text.lastIndexOf("\n") + 1;
    partial = text.slice(end);
    if (end > 0) to.write(text.slice(0, end));
  });
  from.on("end", () => partial && to.write(`${partial}\n`));
}
const handleRuntimeStdio = (stdout, stderr) => {
  forwardLines(stdout, process.stdout);
  forwardLines(stderr, process.stderr);
};

const clickgate = new Miniflare({
  host: "127.0.0.1",
  port: opts.port,
  kvPersist: path.join(opts.persist, "v3", "kv"),
  durableObjectsPersist: path.join(opts.persist, "v3", "do"),
  cf,
  workers,
  handleRuntimeStdio,
  // `/cdn-cgi/handler/scheduled?cron=…&time=…` fires the scheduled handler, as the Cron Trigger
  // would at that time (the feeds' end-to-end test).
  unsafeTriggerHandlers: true,
});
const instances = [clickgate];
console.log(`clickgate ${await clickgate.ready}`);

for (const [name, port, script] of [
  ["bare", opts.barePort, "benches/bare-worker.js"],
  ["bare-logging", opts.bareLoggingPort, "benches/bare-logging-worker.js"],
  ["bare-rust", opts.bareRustPort, "target/bare-rust-worker/plain/entry.mjs"],
  ["bare-rust-logging", opts.bareRustLoggingPort, "target/bare-rust-worker/logging/entry.mjs"],
]) {
  if (port === null) continue;
  // The Rust ones are a module tree like build/: the entry, the generated glue and the wasm.
  const rust = script.startsWith("target/")
    ? { modulesRoot: path.join(root, path.dirname(script)), modulesRules: worker.modulesRules }
    : {};
  const baseline = new Miniflare({
    host: "127.0.0.1",
    port,
    modules: true,
    scriptPath: path.join(root, script),
    ...rust,
    compatibilityDate,
    cf,
    handleRuntimeStdio,
  });
  instances.push(baseline);
  console.log(`${name} ${await baseline.ready}`);
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled(instances.map((mf) => mf.dispose()));
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
