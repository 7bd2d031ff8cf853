// Runs a WebAssembly test binary (wasm32-wasip1) under Node's WASI: cargo's runner for
// `make test-wasm` (CARGO_TARGET_WASM32_WASIP1_RUNNER). Arguments after the file go to the tests.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [, , file, ...args] = process.argv;
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
// A panic aborts (a trap): Node exits non-zero with the trap's message.
process.exitCode = wasi.start(instance);
