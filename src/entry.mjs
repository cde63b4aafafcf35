// The Worker's entry module (wrangler.toml `main`, copied into build/ by scripts/build-worker.sh).
//
// worker-build's generated module (./index.js) exports the fetch handler as a WorkerEntrypoint class
// behind two layers of Proxy: for every request the runtime constructs the class, and the Proxy
// builds a wrapper object and a wrapped method. That plumbing cost more CPU per click than the
// click's decision. This module hands the runtime a plain handler object instead, which calls the
// same generated method the class would have called.
//
// Recovery from a fault inside the Worker is unchanged: the generated glue marks the wasm instance
// as terminated when a call traps, and re-creates it on the next call (workers-rs schedules that on
// abort), with or without the class around it.
import { DurableObject } from "cloudflare:workers";
import Generated, { Network as GeneratedNetwork } from "./index.js";

const fetchMethod = Generated.prototype.fetch;
// The Cron Trigger's handler, which refreshes the feeds (src/feeds.rs).
const scheduledMethod = Generated.prototype.scheduled;
if (typeof fetchMethod !== "function" || typeof scheduledMethod !== "function") {
  throw new Error("build/index.js: the generated Worker has no fetch or scheduled method; was it built by the pinned worker-build?");
}

export default {
  fetch(request, env, ctx) {
    // The generated method reads the bindings and the context from `this`, as an instance has them.
    return fetchMethod.call({ env, ctx }, request);
  },
  scheduled(controller, env, ctx) {
    return scheduledMethod.call({ env, ctx }, controller);
  },
};

// The network's Durable Object (src/network.rs). The runtime takes RPC calls only on a class that
// extends its DurableObject, and the generated class does not, so this one holds an instance of it
// and passes each entry point on: `fetch`, the daily sweep's `alarm`, and `ask`, the call every
// isolate makes (src/objects.rs), which costs far less than a `fetch` to the object.
export class Network extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.object = new GeneratedNetwork(ctx, env);
  }
  fetch(request) {
    return this.object.fetch(request);
  }
  alarm() {
    return this.object.alarm();
  }
  ask(method, target, body) {
    return this.object.ask(method, target, body);
  }
}
