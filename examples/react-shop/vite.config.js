import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run build` writes dist/ (a static site: any server that falls back to index.html
// for unknown paths serves it, `npm run preview` included).
export default defineConfig({
  plugins: [react()],
  // The client (clients/js) is linked from this repository and has React and Stripe's
  // packages in its own node_modules for its tests: one copy of each, this app's.
  resolve: { dedupe: ['react', 'react-dom', '@stripe/react-stripe-js', '@stripe/stripe-js'] },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  // Preview on the dev server's port too: `make demo` allows :5173 (and :3000) by default.
  preview: { host: '127.0.0.1', port: 5173, strictPort: true },
  build: { outDir: 'dist', emptyOutDir: true },
});
