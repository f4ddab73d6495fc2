import neostandard from 'neostandard'

/**
 * The layers of src/, lowest first (keys, schemas, ingest, db, …). A module may import its own layer and the
 * ones below it, never one above: each entry lists what its folders must not
 * import. (src/*.ts at the root are small shared utilities and the app
 * factory; app.ts and server.ts sit on top.)
 */
const ABOVE = {
  schemas: ['ingest', 'auth', 'db', 'reports', 'recording', 'labels', 'live', 'datasets', 'transports', 'plugins', 'routes', 'cli', 'openapi'],
  keys: ['schemas', 'ingest', 'auth', 'db', 'reports', 'recording', 'labels', 'live', 'datasets', 'transports', 'plugins', 'routes', 'cli'],
  ingest: ['auth', 'db', 'reports', 'recording', 'labels', 'live', 'datasets', 'transports', 'plugins', 'routes', 'cli'],
  db: ['auth', 'reports', 'recording', 'labels', 'live', 'datasets', 'transports', 'plugins', 'routes', 'cli'],
  auth: ['reports', 'recording', 'transports', 'plugins', 'routes', 'cli'],
  reports: ['recording', 'transports', 'plugins', 'routes', 'cli'],
  labels: ['recording', 'transports', 'plugins', 'routes', 'cli'],
  datasets: ['transports', 'plugins', 'routes', 'cli'],
  live: ['transports', 'plugins', 'routes', 'cli'],
  recording: ['transports', 'plugins', 'routes', 'cli'],
  transports: ['plugins', 'routes', 'cli'],
  routes: ['cli'],
  plugins: ['cli']
}

const layerRules = Object.entries(ABOVE).map(([layer, above]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [{
        group: above.flatMap(folder => [`../${folder}/*`, `../../${folder}/*`]).concat(['../app.js', '../server.js', '../../app.js', '../../server.js']),
        message: `src/${layer} may import only from its own layer and those below it (see eslint.config.js and docs/design.md).`
      }]
    }]
  }
}))

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.data/**', 'web/dist/**', 'test-output/**'] }),
  ...layerRules
]
