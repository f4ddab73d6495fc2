import { createInterface } from 'node:readline'

/**
 * Asks a yes/no question on stderr and reads the answer from stdin; anything
 * but y/yes, or stdin ending without an answer, means no.
 */
export function confirm (question: string): Promise<boolean> {
  return new Promise(resolve => {
    const prompt = createInterface({ input: process.stdin, output: process.stderr })
    prompt.once('close', () => resolve(false))
    prompt.question(question, answer => {
      resolve(/^y(es)?$/i.test(answer.trim()))
      prompt.close()
    })
  })
}
