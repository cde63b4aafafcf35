// The bare Rust Worker's entry module, as src/entry.mjs is clickgate's: the runtime gets a plain
// handler object that calls the generated fetch method, not worker-build's class behind its Proxies.
import Generated from "./index.js";

const fetchMethod = Generated.prototype.fetch;
if (typeof fetchMethod !== "function") {
  throw new Error("index.js: the generated Worker has no fetch method; was it built by the pinned worker-build?");
}

export default {
  fetch(request, env, ctx) {
    return fetchMethod.call({ env, ctx }, request);
  },
};
