import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run build` writes dist/ (a static site: any server that falls back to index.html
// for unknown paths serves it, `npm run preview` included).
export default defineConfig({
  plugins: [react()],
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  // Preview on the dev server's port too: `make demo` allows :5173 (and :3000) by default.
  preview: { host: '127.0.0.1', port: 5173, strictPort: true },
  build: { outDir: 'dist', emptyOutDir: true },
});
