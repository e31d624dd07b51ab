// Vite build of GraphiQL at /graphql: web/graphiql -> dist/web/graphiql (hashed assets, monaco's
// workers included, under assets/, served at /graphql/assets/). React JSX through esbuild. Every
// asset is also written brotli- and gzip-compressed (.br, .gz) for the server to send as they are.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

const outDir = fileURLToPath(new URL('../../dist/web/graphiql', import.meta.url));

/** Writes `<asset>.br` and `<asset>.gz` beside every asset of 1 KiB or more. */
function precompress(): Plugin {
  return {
    name: 'nexus-precompress',
    apply: 'build',
    closeBundle() {
      const assets = join(outDir, 'assets');
      for (const name of readdirSync(assets)) {
        if (/\.(br|gz)$/.test(name)) continue;
        const data = readFileSync(join(assets, name));
        if (data.length < 1024) continue;
        const quality = { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } };
        writeFileSync(join(assets, `${name}.br`), brotliCompressSync(data, quality));
        writeFileSync(join(assets, `${name}.gz`), gzipSync(data, { level: 9 }));
      }
    },
  };
}

export default defineConfig({
  root: here,
  plugins: [precompress()],
  base: '/graphql/',
  publicDir: false,
  logLevel: 'warn',
  esbuild: { jsx: 'automatic', jsxImportSource: 'react' },
  worker: { format: 'es' },
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    sourcemap: false,
    reportCompressedSize: false,
    // Monaco (GraphiQL 5's editor) alone is several MB; the page is a tool, loaded once and cached.
    chunkSizeWarningLimit: 8000,
    rollupOptions: {
      // React libraries mark their modules "use client" (a server-components hint); harmless here.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
});
