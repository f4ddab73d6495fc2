import { mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { APP_CONTENT_SECURITY_POLICY } from '../../src/plugins/web.js'
import { insertUser } from '../../src/db/users-repository.js'
import { ethereumSigner } from '../auth/signers.js'
import { generateReadings, insertSession } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { httpOrigin } from '../live/sse-client.js'
import { TestPhone, wsUrl, type Reading } from '../ws-client.js'
import { ensureWebBuilt } from './build-web.js'

/**
 * The web page end to end in headless Chromium (Debian's, driven by
 * playwright-core) against the real service: sign in, the sessions table,
 * a session's plot, zoom, labelling by dragging, the live page, users.
 * Screenshots go to test-output/ (ignored by git).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SCREENSHOTS = path.resolve(import.meta.dirname, '..', '..', 'test-output')
const BATCH = 300

ensureWebBuilt()
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SENSOR_READINGS_BATCH_SIZE: String(BATCH), ALLOW_PUBLIC_KEY_LOGIN: 'true' })
await app.listen({ port: 0, host: '127.0.0.1' })
const origin = httpOrigin(app)
const admin = await createUserWithToken(app, 'ADMIN')
const tester = await createUserWithToken(app, 'BETATESTER')

const phones: TestPhone[] = []
let browser: Browser
const tokensSeen: string[] = []
const urlsRequested: string[] = []
const policyViolations: string[] = []

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true })
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
})
afterAll(async () => {
  await browser?.close()
  await Promise.all(phones.map(phone => phone.close()))
})

async function newPage (width = 1280, height = 900): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height }, acceptDownloads: true })
  page.on('request', request => {
    urlsRequested.push(request.url())
    const header = request.headers().authorization
    if (header) tokensSeen.push(header.replace(/^Bearer /, ''))
  })
  page.on('console', message => {
    if (/Content.Security.Policy/i.test(message.text())) policyViolations.push(message.text())
  })
  return page
}

async function signIn (page: Page, email: string, publicKey: string): Promise<void> {
  await page.goto(`${origin}/`)
  await page.fill('input[name=email]', email)
  await page.fill('input[name=publicKey]', publicKey)
  await page.click('form button[type=submit]')
  await page.waitForSelector('#sign-out')
}

/** 100 Hz per sensor from startMs: slow waves and some noise, as a phone in a pocket. */
function signal (count: number, startMs: number, batchId: number): Reading[] {
  const sensors = ['Accelerometer', 'Gyroscope', 'Magnetometer']
  return Array.from({ length: count }, (_, i) => {
    const n = batchId * count + i
    const seconds = Math.floor(n / 3) / 100
    const sensor = n % 3
    const wave = Math.sin(2 * Math.PI * 0.4 * seconds)
    const wobble = Math.sin(2 * Math.PI * 2.3 * seconds + sensor) * 0.3 + Math.sin(n * 12.9898) * 0.15
    return {
      timestamp: startMs + Math.floor(i / 3) * 10,
      sensor: sensors[sensor] as string,
      xAxis: [3, 0.8, 25][sensor]! * wave + wobble,
      yAxis: [1.5, 0.5, -12][sensor]! * Math.cos(2 * Math.PI * 0.25 * seconds) + wobble,
      zAxis: [9.81, 0.1, 40][sensor]! + [1, 0.2, 5][sensor]! * Math.sin(2 * Math.PI * 0.1 * seconds) + wobble
    }
  })
}

/** Records a whole session over the WebSocket protocol, one batch lost on the way, and ends it. */
async function recordSession (token: string, batches: number, lost: number): Promise<number> {
  const phone = await TestPhone.connect(wsUrl(app), bearer(token))
  phones.push(phone)
  phone.send('create_session', { metadata: { device: 'Pixel 8', sampleRateHz: 100 } })
  const { sessionId } = await phone.expect('session_created')
  const start = Date.now() - 10 * 60_000
  let sent = 0
  for (let batchId = 0; batchId < batches; batchId++) {
    const readings = signal(BATCH, start + batchId * (BATCH / 3) * 10, batchId)
    sent += readings.length
    if (batchId === lost) continue
    phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: readings })
    await phone.expect('sensor_readings_batch_written')
  }
  phone.send('destroy_session', { totalSensorReadingsSent: sent })
  await phone.expect('session_destroyed')
  await phone.close()
  return sessionId as number
}

/** Drawn pixels of each plot canvas (not fully transparent). Page code as text: the tests compile without the DOM's types. */
async function drawnPixels (page: Page): Promise<number[]> {
  return page.evaluate(`[...document.querySelectorAll('.plot canvas')].map(canvas => {
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
    let drawn = 0
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn++
    return drawn
  })`)
}

/** Drags across the first plot from one fraction of its width to another. */
async function dragAcrossPlot (page: Page, from: number, to: number): Promise<void> {
  const box = await page.locator('.plot .u-over').first().boundingBox()
  if (!box) throw new Error('no plot')
  const y = box.y + box.height / 2
  await page.mouse.move(box.x + box.width * from, y)
  await page.mouse.down()
  await page.mouse.move(box.x + box.width * (from + to) / 2, y, { steps: 5 })
  await page.mouse.move(box.x + box.width * to, y, { steps: 5 })
  await page.mouse.up()
}

const summaryRange = (url: string) => {
  const params = new URL(url).searchParams
  return { from: params.get('from'), to: params.get('to'), buckets: Number(params.get('buckets')) }
}

describe('the web page in Chromium', () => {
  let sessionId: number

  it('signs a beta tester in and lists their recorded session with its verdict', async () => {
    sessionId = await recordSession(tester.token, 20, 7)
    const page = await newPage()
    const response = await page.goto(`${origin}/`)
    expect(page.url()).toBe(`${origin}/app/`)
    expect(response?.headers()['content-security-policy']).toBe(APP_CONTENT_SECURITY_POLICY)
    await signIn(page, tester.user.email, tester.user.publicKey)
    const row = page.locator(`tr[data-session-id="${sessionId}"]`)
    await row.waitFor()
    expect(await row.locator('td.verdict .badge').textContent()).toBe('incomplete')
    expect(await row.locator('td.verdict small').textContent()).toContain('lost batches')
    expect(await row.locator('td.number').textContent()).toBe((19 * BATCH).toLocaleString('en-US'))
    await page.screenshot({ path: path.join(SCREENSHOTS, 'sessions.png'), fullPage: true })
    await page.close()
  })

  it('opens the session: report, a drawn plot of every sensor, the lost batch shaded as a gap', async () => {
    const page = await newPage()
    await signIn(page, tester.user.email, tester.user.publicKey)
    await page.click(`tr[data-session-id="${sessionId}"]`)
    await page.waitForSelector('.plots[data-loaded="1"]')
    expect(await page.locator('#report-verdict').textContent()).toContain('lost batches')
    expect(await page.locator('.plot').count()).toBe(3)
    const pixels = await drawnPixels(page)
    expect(pixels).toHaveLength(3)
    for (const drawn of pixels) expect(drawn).toBeGreaterThan(5000)
    expect(await page.locator('#plot-status').textContent()).toMatch(/5,700 readings in view.*[1-9]\d* gaps/)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'session.png'), fullPage: true })
    await page.close()
  })

  it('asks the server for the narrower range when zoomed, the next range when panned, and the whole session again', async () => {
    const page = await newPage()
    await signIn(page, tester.user.email, tester.user.publicKey)
    await page.goto(`${origin}/app/#/sessions/${sessionId}`)
    await page.waitForSelector('.plots[data-loaded="1"]')
    const zoomed = page.waitForRequest(request => request.url().includes('/readings/summary?') && request.url().includes('from='))
    await dragAcrossPlot(page, 0.3, 0.5)
    const range = summaryRange((await zoomed).url())
    await page.waitForSelector('.plots[data-loaded="2"]')
    const span = (Date.parse(range.to as string) - Date.parse(range.from as string)) / 1000
    // 20 batches of 1 s: a fifth of the plot's width is about 4 s.
    expect(span).toBeGreaterThan(2)
    expect(span).toBeLessThan(6)
    expect(range.buckets).toBeGreaterThan(300)
    for (const drawn of await drawnPixels(page)) expect(drawn).toBeGreaterThan(2000)
    // Panning later asks for a range of the same width, half a width on.
    const panned = page.waitForRequest(request => request.url().includes('/readings/summary?') && request.url().includes('from='))
    await page.click('#pan-later')
    const next = summaryRange((await panned).url())
    const nextSpan = (Date.parse(next.to as string) - Date.parse(next.from as string)) / 1000
    expect(Math.abs(nextSpan - span)).toBeLessThan(0.01)
    expect(Math.abs((Date.parse(next.from as string) - Date.parse(range.from as string)) / 1000 - span / 2)).toBeLessThan(0.01)
    const whole = page.waitForRequest(request => request.url().includes('/readings/summary?') && !request.url().includes('from='))
    await page.click('#whole-session')
    await whole
    await page.close()
  })

  it('labels an interval by dragging, and the label is stored', async () => {
    const page = await newPage()
    await signIn(page, tester.user.email, tester.user.publicKey)
    await page.goto(`${origin}/app/#/sessions/${sessionId}`)
    await page.waitForSelector('.plots[data-loaded="1"]')
    await page.check('#label-mode')
    await dragAcrossPlot(page, 0.55, 0.8)
    await page.waitForSelector('.label-form:not([hidden])')
    await page.selectOption('.label-form select[name=label]', 'cycling')
    await page.fill('.label-form input[name=note]', 'on the towpath')
    const saved = page.waitForResponse(response => response.url().endsWith(`/sessions/${sessionId}/labels`) && response.request().method() === 'POST')
    await page.click('.label-form button[type=submit]')
    expect((await saved).status()).toBe(201)
    await page.waitForSelector('table.labels tr[data-label-id]')
    const stored = await app.inject({ method: 'GET', url: `/sessions/${sessionId}/labels`, headers: bearer(tester.token) })
    const labels = stored.json().labels as Array<{ label: string, note: string, startTime: string, endTime: string }>
    expect(labels).toHaveLength(1)
    expect(labels[0]).toMatchObject({ label: 'cycling', note: 'on the towpath' })
    const seconds = (Date.parse(labels[0]!.endTime) - Date.parse(labels[0]!.startTime)) / 1000
    expect(seconds).toBeGreaterThan(3)
    expect(seconds).toBeLessThan(7)
    await page.waitForTimeout(200)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'session-labelled.png'), fullPage: true })
    // The list shows it, and filters by it.
    await page.goto(`${origin}/app/#/sessions`)
    await page.selectOption('select[name=label]', 'cycling')
    await page.waitForSelector(`tr[data-session-id="${sessionId}"] >> text=cycling`)
    await page.close()
  })

  it('downloads the CSV through fetch with the header, and flags the session', async () => {
    const page = await newPage()
    await signIn(page, tester.user.email, tester.user.publicKey)
    await page.goto(`${origin}/app/#/sessions/${sessionId}`)
    await page.waitForSelector('#download-csv')
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')])
    expect(download.suggestedFilename()).toBe(`session-${sessionId}.csv`)
    const csv = readFileSync(await download.path(), 'utf8')
    expect(csv.split('\n')[0]).toBe('timestamp,sensor,x,y,z')
    expect(csv.trim().split('\n')).toHaveLength(19 * BATCH + 1)
    await page.fill('input[name=flagReason]', 'phone fell out of the pocket')
    await page.click('#flag')
    await page.waitForSelector('#unflag')
    const session = await app.inject({ method: 'GET', url: `/sessions/${sessionId}`, headers: bearer(tester.token) })
    expect(session.json()).toMatchObject({ flaggedIncorrect: true, flagReason: 'phone fell out of the pocket' })
    await page.close()
  })

  it('plots a million-reading session, zoomed out, from its summary', async () => {
    const big = await insertSession(app.db, tester.user.id, { createdAt: '2024-01-01T00:00:00Z' })
    await generateReadings(app.db, big, 1_000_000)
    await app.db.query('analyze readings')
    const page = await newPage()
    await signIn(page, tester.user.email, tester.user.publicKey)
    await page.goto(`${origin}/app/#/sessions/${big}`)
    const started = Date.now()
    await page.waitForSelector('.plots[data-loaded="1"]', { timeout: 10_000 })
    const firstPlotMs = Date.now() - started
    for (const drawn of await drawnPixels(page)) expect(drawn).toBeGreaterThan(5000)
    // Once more with the rows in the cache, as a second look at the session would be.
    await page.click('#whole-session')
    await page.waitForSelector('.plots[data-loaded="2"]')
    const timed = Number(/; (\d+) ms/.exec(await page.locator('#plot-status').textContent() ?? '')?.[1])
    console.log(`[web] 1M readings: first plot ${firstPlotMs} ms after navigation (page, session and summary), summary again ${timed} ms`)
    // The summary itself is held to a second in test/read-path/readings-summary.test.ts and measured by `npm run bench`;
    // here the browser, the page and a CPU shared with other test files come on top.
    expect(timed).toBeLessThan(3000)
    await page.close()
  })

  it('shows a streaming phone on the live page, its count growing', async () => {
    const streamer = await createUserWithToken(app, 'BETATESTER')
    const phone = await TestPhone.connect(wsUrl(app), bearer(streamer.token))
    phones.push(phone)
    phone.send('create_session', { metadata: { device: 'Test phone' } })
    const { sessionId: liveId } = await phone.expect('session_created')
    const start = Date.now() - 60_000
    let batchId = 0
    const sendBatch = async () => {
      phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: signal(BATCH, start + batchId * 1000, batchId) })
      batchId++
      await phone.expect('sensor_readings_batch_written')
    }
    await sendBatch()

    const page = await newPage()
    await signIn(page, admin.user.email, admin.user.publicKey)
    await page.goto(`${origin}/app/#/live/${liveId}`)
    const count = page.locator(`tr[data-session-id="${liveId}"] td.live-count`)
    await count.waitFor()
    await page.waitForSelector('#live-state >> text=live')
    const before = Number((await count.textContent())?.replaceAll(',', ''))
    for (let i = 0; i < 4; i++) {
      await sendBatch()
      await page.waitForTimeout(250)
    }
    await page.waitForFunction(`document.querySelector('tr[data-session-id="${liveId}"] td.live-count')?.textContent.replaceAll(',', '') === '${5 * BATCH}'`,
      undefined, { timeout: 2000 })
    const after = Number((await count.textContent())?.replaceAll(',', ''))
    expect(before).toBe(BATCH)
    expect(after).toBe(5 * BATCH)
    await page.waitForSelector('.live-plot .plots[data-loaded]')
    await page.waitForTimeout(300)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'live.png'), fullPage: true })
    await page.close()
  })

  it('lets an admin create a user and mint and revoke an ingest key', async () => {
    const page = await newPage()
    await signIn(page, admin.user.email, admin.user.publicKey)
    await page.goto(`${origin}/app/#/users`)
    await page.fill('input[name=name]', 'Casey Rider')
    await page.fill('input[name=email]', 'casey@example.test')
    await page.fill('input[name=publicKey]', ethereumSigner().publicKey)
    await page.click('form.card button[type=submit]')
    const row = page.locator('tr', { hasText: 'casey@example.test' })
    await row.waitFor()
    await row.locator('text=Ingest keys').click()
    await page.fill('.ingest-keys input[name=label]', 'Pixel 8')
    await page.click('.ingest-keys button[type=submit]')
    const key = await page.locator('.minted .secret').textContent()
    expect(key).toMatch(/^mik_/)
    await page.locator('.ingest-keys tr', { hasText: 'Pixel 8' }).locator('text=Revoke').click()
    await page.waitForSelector('.ingest-keys >> text=No ingest keys.')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'users.png'), fullPage: true })
    await page.close()
  })

  it('signs in with a wallet\'s personal_sign where the browser has one', async () => {
    const wallet = ethereumSigner()
    await insertUser(app.db, { name: 'Wallet User', email: 'wallet@example.test', publicKey: wallet.publicKey, role: 'BETATESTER' })
    const page = await newPage()
    await page.exposeFunction('testWalletSign', (hexMessage: string) => wallet.sign(Buffer.from(hexMessage.slice(2), 'hex').toString('utf8')))
    // A stand-in for a wallet extension: EIP-1193 request(), signing in Node with a real secp256k1 key.
    await page.addInitScript(`window.ethereum = {
      request: async ({ method, params }) => {
        if (method === 'eth_requestAccounts') return ['${wallet.publicKey}']
        if (method === 'personal_sign') return window.testWalletSign(params[0])
        throw new Error('unsupported ' + method)
      }
    }`)
    await page.goto(`${origin}/app/`)
    await page.click('#wallet-sign-in')
    await page.waitForSelector('#sign-out')
    expect(await page.locator('header .who').textContent()).toContain('Wallet User')
    await page.close()
  })

  it('never put a token in a URL, and the pages broke no policy', () => {
    expect(tokensSeen.length).toBeGreaterThan(10)
    for (const token of new Set(tokensSeen)) {
      for (const url of urlsRequested) expect(url).not.toContain(token)
    }
    expect(policyViolations).toEqual([])
  })
})
