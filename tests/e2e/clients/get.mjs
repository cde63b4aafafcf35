// One GET with Node's built-in fetch, as a script sending clicks would: its own headers, a
// browser's User-Agent, no redirect followed. Prints the status.
//   node get.mjs URL USER_AGENT
const [url, ua] = process.argv.slice(2);
const r = await fetch(url, { headers: { "user-agent": ua }, redirect: "manual" });
console.log(r.status);
