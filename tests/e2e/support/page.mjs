// Drives the report page in headless Chromium over the DevTools protocol, as an operator would:
// node page.mjs URL OUT_DIR NETWORK
// opens URL at desktop size (1280×800) and phone size (390×844), saves a screenshot of each in
// OUT_DIR, presses NETWORK's block button, cancels, presses it again and confirms, switches the
// grouping to sub ID and to country with a screenshot of each at both sizes, and prints what it saw
// as one JSON object. The assertions are the end-to-end test's.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";

const [url, outDir, network] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "clickgate-chromium-"));
const chromium = spawn(process.env.CHROMIUM || "chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
  "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });

let exitCode = 1;
try {
  const browserWs = await new Promise((ok, fail) => {
    let said = "";
    chromium.stderr.on("data", (d) => {
      said += d;
      const m = said.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) ok(m[1]);
    });
    chromium.on("exit", () => fail(new Error("chromium exited: " + said)));
  });
  const port = new URL(browserWs).port;
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = targets.find((t) => t.type === "page");
  const ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
  await new Promise((ok, fail) => { ws.once("open", ok); ws.once("error", fail); });

  let next = 0;
  const pending = new Map();
  const posts = [];
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    if (msg.id) return pending.get(msg.id)(msg);
    if (msg.method === "Network.requestWillBeSent" && msg.params.request.method === "POST") {
      posts.push(msg.params.request.url);
    }
  });
  const send = (method, params = {}) => new Promise((ok, fail) => {
    const id = ++next;
    pending.set(id, (r) => (r.error ? fail(new Error(`${method}: ${r.error.message}`)) : ok(r.result)));
    ws.send(JSON.stringify({ id, method, params }));
  });
  const evaluate = async (expression) => {
    const r = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.exception?.description}`);
    return r.result.value;
  };
  // Up to 15 s for the page to get where the test expects it.
  const until = async (expression, what) => {
    for (let i = 0; i < 300; i++) {
      if (await evaluate(expression)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`waited in vain for ${what}: ${await evaluate("document.documentElement.outerHTML")}`);
  };
  const size = (width, height, mobile) =>
    send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile });
  // A resize or a click is painted on a later frame; on a loaded machine a capture taken at once
  // can show the page before it, so each capture waits for two frames first.
  const shot = async (name) => {
    await evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))");
    const { data } = await send("Page.captureScreenshot", { format: "png" });
    writeFileSync(join(outDir, name), Buffer.from(data, "base64"));
  };

  await send("Network.enable");
  await send("Page.enable");
  await size(1280, 800, false);
  await send("Page.navigate", { url });
  await until(`document.body?.dataset.state === "loaded"`, "the report to load");
  await shot("report-desktop.png");
  const desktop = await evaluate("document.documentElement.outerHTML");
  // The whole table in view at desktop size: nothing left to a sideways scroll.
  const desktopFits = await evaluate(`(() => { const box = document.querySelector(".scroll"); return box.scrollWidth <= box.clientWidth; })()`);

  await size(390, 844, true);
  await shot("report-phone.png");
  // Every cell of the table within the phone's width: nothing lost to the right.
  const phone = await evaluate(`({
    scroll_width: document.documentElement.scrollWidth,
    widest_cell: Math.max(...[...document.querySelectorAll("#table td")].map((td) => td.getBoundingClientRect().right)),
  })`);
  await evaluate(`document.getElementById("table").scrollIntoView()`);
  await shot("report-phone-table.png");

  const press = `document.querySelector('button[data-verb="block"][data-network="${network}"]').click()`;
  await evaluate(press);
  const asked = await evaluate(`document.getElementById("ask").open && document.getElementById("ask-text").textContent`);
  const postedWhileAsking = posts.length;
  await shot("report-phone-confirm.png");
  await evaluate(`document.getElementById("ask-no").click()`);
  const closedByCancel = !(await evaluate(`document.getElementById("ask").open`));
  const postedAfterCancel = posts.length;
  await evaluate(press);
  await evaluate(`document.getElementById("by").value = "ops@example.com"; document.getElementById("ask-yes").click()`);
  await until(`document.getElementById("status").textContent.startsWith("${network}:")`, "the block's answer");
  const status = await evaluate(`document.getElementById("status").textContent`);

  // The grouping control, as a person on a phone would use it, then the same at desktop size.
  const grouped = {};
  for (const group of ["sub_id", "country"]) {
    await evaluate(`(() => { const g = document.getElementById("group"); g.value = "${group}"; g.dispatchEvent(new Event("change")); })()`);
    await until(`document.body.dataset.state === "loaded"`, `the report grouped by ${group}`);
    await size(390, 844, true);
    await evaluate(`document.getElementById("table").scrollIntoView()`);
    await shot(`report-phone-${group}.png`);
    const widest = await evaluate(`Math.max(...[...document.querySelectorAll("#table td")].map((td) => td.getBoundingClientRect().right))`);
    await size(1280, 800, false);
    await shot(`report-desktop-${group}.png`);
    grouped[group] = { table: await evaluate(`document.getElementById("table").outerHTML`), phone_widest_cell: widest };
  }

  console.log(JSON.stringify({
    desktop, desktop_fits: desktopFits, phone, asked, posted_while_asking: postedWhileAsking, closed_by_cancel: closedByCancel,
    posted_after_cancel: postedAfterCancel, posts, status, grouped,
  }));
  ws.close();
  exitCode = 0;
} catch (e) {
  console.error(e.stack || String(e));
} finally {
  chromium.kill();
  await new Promise((r) => (chromium.exitCode === null ? chromium.once("exit", r) : r()));
  // Chromium's helper processes may still be writing the profile when the browser has exited:
  // retry, and a profile left behind in /tmp is no failure of the page.
  try {
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch (e) {
    console.error(`left ${profile}: ${e.message}`);
  }
}
process.exit(exitCode);
