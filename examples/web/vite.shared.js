// What every example's Vite build needs for liveness-check: a module worker (the widget's worker
// imports the wasm module), and the package left out of the dev server's pre-bundling, so that
// its `new URL('./…', import.meta.url)` assets stay next to it.
export const liveness = {
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['liveness-check'] },
  build: { outDir: 'dist', emptyOutDir: true, assetsInlineLimit: 0 },
};
