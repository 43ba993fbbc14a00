import { defineConfig } from 'vite';
import { liveness } from '../vite.shared.js';

export default defineConfig({ ...liveness });
