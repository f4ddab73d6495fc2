import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

/** Where `npm run build` puts the page (web/dist), the same from src/plugins and dist/plugins. */
export const WEB_ROOT = fileURLToPath(new URL('../../web/dist/', import.meta.url))

/**
 * The app's pages allow only their own scripts, styles and API calls. No
 * inline script or style, no other origin, no framing, no plugins. The API
 * and the Swagger UI at /docs are outside this plugin and keep the looser
 * headers of security-headers.ts.
 */
export const APP_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

export interface WebPluginOptions {
  /** The built page; WEB_ROOT unless a test serves another build. */
  root?: string
}

/**
 * Serves the team's web page (web/, built by `npm run build`) at /app/ with
 * @fastify/static; / redirects there. Not wrapped in fastify-plugin: the
 * policy hook stays inside this plugin, on the app's responses only.
 */
async function webPlugin (fastify: FastifyInstance, options: WebPluginOptions) {
  const root = options.root ?? WEB_ROOT
  fastify.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', APP_CONTENT_SECURITY_POLICY)
  })
  fastify.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/app/'))
  fastify.get('/app', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/app/'))

  if (!existsSync(path.join(root, 'index.html'))) {
    fastify.log.warn({ root }, 'The web page is not built (npm run build); /app/ answers 503.')
    fastify.get('/app/*', { schema: { hide: true } }, async (_request, reply) =>
      reply.code(503).send({ error: 'WEB_NOT_BUILT', message: 'The web page is not built on this server: run npm run build' }))
    return
  }
  await fastify.register(fastifyStatic, {
    root,
    prefix: '/app/',
    decorateReply: false,
    index: 'index.html',
    cacheControl: false,
    // File names under assets/ carry their content's hash: cached for good. The page itself is checked every time.
    setHeaders: (response, file) => {
      response.setHeader('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache')
    }
  })
}

export default webPlugin
