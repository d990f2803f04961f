// The bundle InferLab serves (/browser/client/inferlab-browser.js): the package with wllama in one
// ES module, and wllama's WebAssembly beside it.
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(root, 'src/index.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  minify: true,
  sourcemap: true,
  outfile: join(root, 'dist/inferlab-browser.js'),
  logLevel: 'warning',
});
copyFileSync(join(root, 'node_modules/@wllama/wllama/esm/wasm/wllama.wasm'), join(root, 'dist/wllama.wasm'));
