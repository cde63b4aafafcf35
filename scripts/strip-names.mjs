// Drops the wasm "name" custom section (function names for stack traces) from a built module.
// wasm-opt would do it, but it is not installed here (it downloads from GitHub); `strip` in the
// cargo profile would drop sections wasm-bindgen needs. The name section is a quarter of the module
// and is only read by debuggers: panics still report their message through the panic hook.
//
//   node scripts/strip-names.mjs FILE.wasm
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
const wasm = readFileSync(file);
if (wasm.readUInt32LE(0) !== 0x6d736100) throw new Error(`${file}: not a wasm module`);

const leb = (at) => { // unsigned LEB128 -> [value, next offset]
  let value = 0, shift = 0, byte;
  do {
    byte = wasm[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
};

const kept = [wasm.subarray(0, 8)];
let dropped = 0;
for (let at = 8; at < wasm.length;) {
  const start = at;
  const id = wasm[at];
  const [size, body] = leb(at + 1);
  const end = body + size;
  if (end > wasm.length) throw new Error(`${file}: section at ${start} runs past the end`);
  let name = null;
  if (id === 0) {
    const [len, text] = leb(body);
    name = wasm.subarray(text, text + len).toString("utf8");
  }
  if (name === "name") dropped += end - start;
  else kept.push(wasm.subarray(start, end));
  at = end;
}
writeFileSync(file, Buffer.concat(kept));
console.error(`strip-names: ${file}: ${dropped} bytes of names dropped`);
