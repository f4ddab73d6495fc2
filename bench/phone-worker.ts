/**
 * A generator process: runs many simulated phones on its own event loop and
 * talks to the orchestrator over IPC (prepare -> ready, start -> done).
 */
import { performance } from 'node:perf_hooks'
import { Phone, type PhoneOptions, type PhoneResult } from './phone.js'

export type WorkerRequest =
  | { type: 'prepare', phones: PhoneOptions[], connectConcurrency: number }
  | { type: 'start', startAt: number, endAt: number }
  | { type: 'exit' }

export type WorkerReply =
  | { type: 'ready', opened: number, failed: number }
  | { type: 'done', results: PhoneResult[], eventLoopUtilization: number }
  | { type: 'fatal', message: string }

const send = (reply: WorkerReply) => process.send?.(reply)

let phones: Phone[] = []
let failed: Phone[] = []

async function prepare (options: PhoneOptions[], concurrency: number): Promise<void> {
  phones = []
  failed = []
  let next = 0
  const openOne = async () => {
    while (next < options.length) {
      const phone = new Phone(options[next++]!)
      try {
        await phone.open()
        phones.push(phone)
      } catch (err) {
        phone.result.errorCount++
        phone.result.errors.push(`could not start: ${(err as Error).message}`)
        await phone.close().catch(() => {})
        failed.push(phone)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, openOne))
  send({ type: 'ready', opened: phones.length, failed: failed.length })
}

async function run (startAt: number, endAt: number): Promise<void> {
  const elu = performance.eventLoopUtilization()
  for (const phone of phones) phone.start(startAt, endAt)
  await new Promise(resolve => setTimeout(resolve, Math.max(0, endAt - Date.now())))
  const busy = performance.eventLoopUtilization(elu).utilization
  const results = await Promise.all(phones.map(phone => phone.finish()))
  send({ type: 'done', results: [...results, ...failed.map(phone => phone.result)], eventLoopUtilization: busy })
}

process.on('message', (message: WorkerRequest) => {
  const fail = (err: unknown) => send({ type: 'fatal', message: (err as Error).stack ?? String(err) })
  switch (message.type) {
    case 'prepare':
      prepare(message.phones, message.connectConcurrency).catch(fail)
      break
    case 'start':
      run(message.startAt, message.endAt).catch(fail)
      break
    case 'exit':
      process.disconnect()
      break
  }
})
