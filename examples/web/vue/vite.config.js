import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';
import { liveness } from '../vite.shared.js';

export default defineConfig({
  ...liveness,
  // <liveness-check> is a custom element, not a Vue component.
  plugins: [vue({ template: { compilerOptions: { isCustomElement: (tag) => tag === 'liveness-check' } } })],
});
