import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

/**
 * The team's web page, served by the service at /app/ (src/plugins/web.ts).
 * Everything it loads is built into dist/: no CDN at run time, and a
 * Content-Security-Policy that allows only the page's own scripts and styles.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/app/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Small assets would otherwise be inlined as data: URLs, which the policy does not allow for scripts.
    assetsInlineLimit: 0
  },
  server: {
    // `npm run dev:web`: the API on the service's port, the page with hot reload.
    proxy: Object.fromEntries(['/auth', '/me', '/users', '/sessions', '/live', '/labels', '/health'].map(path => [path, 'http://127.0.0.1:3000']))
  }
})
