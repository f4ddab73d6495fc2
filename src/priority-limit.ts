/** What a level of urgency may take. */
export interface LevelOptions {
  /**
   * A task of this level starts only while fewer than this many tasks run
   * (default: every slot). Below the limit, the remaining slots stay free
   * for the more urgent levels, which then never wait behind this one.
   */
  startsBelow?: number
  /** Refused, not queued, while this many tasks of any level wait (default: never refused). */
  maxWaiting?: number
}

export interface PriorityLimitOptions<L extends string> {
  /** Tasks running at once. */
  maxRunning: number
  /** The levels, most urgent first. */
  urgency: readonly L[]
  levels?: Partial<Record<L, LevelOptions>>
  /** Tasks of one group (say, a user) waiting or running at once; more are refused (default: no limit). */
  maxPerGroup?: number
}

export interface TaskOptions<L extends string> {
  level: L
  /**
   * Names the work: a request whose key matches a task of its level that is
   * still waiting joins it and shares its result (the task has not read
   * anything yet, so it serves both). Two tasks with one key never run at
   * once; the second waits for the first to finish.
   */
  key?: string
  /** Whose task this is, for `maxPerGroup`. */
  group?: string
}

export type Admission<T> =
  /** joined: an earlier waiting task with the same key serves this request. */
  | { admitted: true, joined: boolean, result: Promise<T> }
  | { admitted: false, reason: 'queue-full' | 'group-full' }

/** Thrown by `run` when a task is refused. */
export class TaskRefusedError extends Error {
  readonly code = 'TASK_REFUSED'
  constructor (readonly reason: 'queue-full' | 'group-full') {
    super(`Task refused: ${reason}`)
    this.name = 'TaskRefusedError'
  }
}

interface Task {
  level: number
  key?: string
  group?: string
  start: () => void
  result: Promise<unknown>
}

function checkCount (name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`PriorityLimit: ${name} needs a positive integer, got ${value}`)
}

/**
 * Runs async work at most `maxRunning` at a time, the most urgent waiting
 * task first and, within a level, in arrival order. Unlike a plain FIFO, work
 * somebody waits on is never queued behind a storm of work nobody waits on.
 * A slot is given back whether the work resolves or throws.
 */
export class PriorityLimit<L extends string> {
  private readonly maxRunning: number
  private readonly maxPerGroup: number
  private readonly urgency: readonly L[]
  private readonly levels: Array<Required<LevelOptions>>
  /** Waiting tasks, one FIFO per level, most urgent first. */
  private readonly queues: Task[][]
  private runningCount = 0
  private waitingCount = 0
  private readonly runningKeys = new Set<string>()
  private readonly perGroup = new Map<string, number>()

  constructor (options: PriorityLimitOptions<L>) {
    checkCount('maxRunning', options.maxRunning)
    if (options.maxPerGroup !== undefined) checkCount('maxPerGroup', options.maxPerGroup)
    if (options.urgency.length === 0 || new Set(options.urgency).size !== options.urgency.length) {
      throw new Error('PriorityLimit: urgency needs distinct levels')
    }
    this.maxRunning = options.maxRunning
    this.maxPerGroup = options.maxPerGroup ?? Number.POSITIVE_INFINITY
    this.urgency = options.urgency
    this.levels = options.urgency.map(name => {
      const { startsBelow = options.maxRunning, maxWaiting } = options.levels?.[name] ?? {}
      checkCount(`${name}.startsBelow`, startsBelow)
      if (startsBelow > options.maxRunning) throw new Error(`PriorityLimit: ${name}.startsBelow exceeds maxRunning`)
      if (maxWaiting !== undefined) checkCount(`${name}.maxWaiting`, maxWaiting)
      return { startsBelow, maxWaiting: maxWaiting ?? Number.POSITIVE_INFINITY }
    })
    this.queues = options.urgency.map(() => [])
  }

  /** Tasks running now. */
  get running (): number {
    return this.runningCount
  }

  /** Tasks waiting for a slot. */
  get waiting (): number {
    return this.waitingCount
  }

  /** Tasks of the group waiting or running. */
  groupSize (group: string): number {
    return this.perGroup.get(group) ?? 0
  }

  /** Queues the work, joins a waiting task with its key, or refuses it; the decision is made at once. */
  schedule<T> (work: () => Promise<T>, options: TaskOptions<L>): Admission<T> {
    const level = this.urgency.indexOf(options.level)
    if (level < 0) throw new Error(`PriorityLimit: unknown level ${options.level}`)
    const queue = this.queues[level] as Task[]
    if (options.key !== undefined) {
      const twin = queue.find(task => task.key === options.key)
      // The caller's key promises the same work, hence the same result type.
      if (twin) return { admitted: true, joined: true, result: twin.result as Promise<T> }
    }
    if (this.waitingCount >= (this.levels[level] as Required<LevelOptions>).maxWaiting) return { admitted: false, reason: 'queue-full' }
    if (options.group !== undefined && this.groupSize(options.group) >= this.maxPerGroup) return { admitted: false, reason: 'group-full' }

    let start = () => {}
    const started = new Promise<void>(resolve => { start = resolve })
    const task: Task = { level, key: options.key, group: options.group, start, result: Promise.resolve() }
    const result = started.then(work).finally(() => this.finish(task))
    task.result = result
    queue.push(task)
    this.waitingCount++
    if (task.group !== undefined) this.perGroup.set(task.group, this.groupSize(task.group) + 1)
    this.dispatch()
    return { admitted: true, joined: false, result }
  }

  /** Schedules the work and waits for it; a refusal rejects with TaskRefusedError. */
  async run<T> (work: () => Promise<T>, options: TaskOptions<L>): Promise<T> {
    const admission = this.schedule(work, options)
    if (!admission.admitted) throw new TaskRefusedError(admission.reason)
    return await admission.result
  }

  /** Starts waiting tasks, most urgent first, while a slot is free to them. */
  private dispatch (): void {
    while (this.runningCount < this.maxRunning) {
      const next = this.nextStartable()
      if (!next) return
      const [queue, index] = next
      const [task] = queue.splice(index, 1) as [Task]
      this.waitingCount--
      this.runningCount++
      if (task.key !== undefined) this.runningKeys.add(task.key)
      task.start()
    }
  }

  private nextStartable (): [Task[], number] | undefined {
    for (let level = 0; level < this.queues.length; level++) {
      if (this.runningCount >= (this.levels[level] as Required<LevelOptions>).startsBelow) continue
      const queue = this.queues[level] as Task[]
      const index = queue.findIndex(task => task.key === undefined || !this.runningKeys.has(task.key))
      if (index >= 0) return [queue, index]
    }
    return undefined
  }

  private finish (task: Task): void {
    this.runningCount--
    if (task.key !== undefined) this.runningKeys.delete(task.key)
    if (task.group !== undefined) {
      const left = this.groupSize(task.group) - 1
      if (left > 0) this.perGroup.set(task.group, left)
      else this.perGroup.delete(task.group)
    }
    this.dispatch()
  }
}
