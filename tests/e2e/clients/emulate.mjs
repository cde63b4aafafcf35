// Headless Chromium in mobile emulation following one link, as DevTools' device mode emulates a
// phone: the User-Agent and its client hints (Emulation.setUserAgentOverride with the metadata),
// a phone's screen and touch. Exits once the page has loaded or failed to, or after 20 s.
//   node --experimental-websocket emulate.mjs CHROMIUM URL USER_AGENT MAJOR
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const [browser, url, userAgent, major] = process.argv.slice(2);
const profile = mkdtempSync(path.join(tmpdir(), "clickgate-emulate-"));
const child = spawn(browser, [
  "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
  `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank",
], { stdio: "ignore" });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const done = (code) => {
  // Chromium's helper processes may still be writing the profile when the browser has exited:
  // retry, and a profile left behind in /tmp is no failure of the click.
  child.once("exit", () => {
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (e) {
      console.error(`left ${profile}: ${e.message}`);
    }
    process.exit(code);
  });
  child.kill();
};
setTimeout(() => { console.error("timed out"); done(1); }, 20000);

// Chromium writes the port it chose into the profile once it listens.
let port;
while (!port) {
  try { port = readFileSync(path.join(profile, "DevToolsActivePort"), "utf8").split("\n")[0]; }
  catch { await sleep(100); }
}
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const page = targets.find((t) => t.type === "page");
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener("open", r, { once: true }));
let next = 0;
const waiting = new Map();
const events = [];
ws.addEventListener("message", (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id !== undefined) waiting.get(msg.id)?.(msg);
  else events.push(msg.method);
});
const send = (method, params = {}) => new Promise((resolve, reject) => {
  const id = ++next;
  waiting.set(id, (msg) => (msg.error ? reject(new Error(`${method}: ${msg.error.message}`)) : resolve(msg.result)));
  ws.send(JSON.stringify({ id, method, params }));
});

const brands = [{ brand: "Chromium", version: major }, { brand: "Not_A Brand", version: "24" }];
await send("Emulation.setUserAgentOverride", {
  userAgent,
  platform: "Linux armv8l",
  userAgentMetadata: {
    brands, fullVersionList: brands, platform: "Android", platformVersion: "14.0.0",
    architecture: "", model: "Pixel 8", mobile: true,
  },
});
await send("Emulation.setDeviceMetricsOverride", { width: 412, height: 915, deviceScaleFactor: 2.625, mobile: true });
await send("Emulation.setTouchEmulationEnabled", { enabled: true, maxTouchPoints: 5 });
await send("Page.enable");
await send("Page.navigate", { url });
while (!events.includes("Page.loadEventFired") && !events.includes("Page.frameStoppedLoading")) await sleep(50);
ws.close();
done(0);
