// Runs a wasm32-wasip1 program in node's V8 (WASI preview 1): run.mjs MODULE [ARGS...]
import { WASI } from 'node:wasi';
import { readFile } from 'node:fs/promises';
const wasi = new WASI({ version: 'preview1', args: ['crypto-candidates', ...process.argv.slice(3)], env: {} });
const module = await WebAssembly.compile(await readFile(process.argv[2]));
wasi.start(await WebAssembly.instantiate(module, wasi.getImportObject()));
