/**
 * What `s3x` writes, and where. stdout holds the result (keys, entries, paths, reports, or one
 * JSON document / JSON line per item with `--json`), written with backpressure so that a listing
 * of millions of keys streams through a pipe in flat memory. stderr holds progress (on a terminal
 * only: one line redrawn with `\r`), summaries, prompts and errors, which print as one line
 * (`s3x: Manifest not found: x.jsonl`) unless `--debug` asks for the stack; under `--json`, an
 * error is one JSON object instead (`errorJson`).
 *
 * @example
 * ```ts
 * import { Output } from '@s3exchange/cli'
 *
 * const out = new Output()
 * const progress = out.progress('put', { total: files.length, unit: 'files' })
 * for (const file of files) {
 *   await upload(file)
 *   progress.tick(1, file.size)
 *   await out.line(file.key)
 * }
 * progress.done()
 * ```
 */
import { once } from 'node:events'
import { describeEvent, type S3ExchangeEvent } from 's3exchange'

/** A stream `Output` writes to: `process.stdout`, `process.stderr`, or a stand-in in tests. */
export interface OutputStream {
  write(chunk: string | Uint8Array): boolean
  once(event: string, listener: (...args: unknown[]) => void): unknown
  on(event: string, listener: (...args: unknown[]) => void): unknown
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown
  isTTY?: boolean
  columns?: number
}

/** Options for a {@link Progress} line. */
export interface ProgressOptions {
  /** How many units there will be, when known: the line shows a bar and `n/total`. */
  total?: number
  /** How many bytes there will be, when known: the line shows `done / total` bytes. */
  totalBytes?: number
  /** What is counted, e.g. `files` (default `items`). */
  unit?: string
}

/** The figures a library call reports (its `onProgress`: see `Progress` in `s3exchange`). */
export interface LibraryProgress {
  loadedBytes: number
  totalBytes?: number | undefined
  loadedObjects: number
  totalObjects?: number | undefined
}

/** The stdout and stderr of one run; see the module comment. */
export class Output {
  readonly stdout: OutputStream
  readonly stderr: OutputStream
  #progress: Progress | undefined

  constructor(stdout: OutputStream = process.stdout, stderr: OutputStream = process.stderr) {
    this.stdout = stdout
    this.stderr = stderr
  }

  /** True when stderr is a terminal: progress is drawn, confirmations can be asked. */
  get interactive(): boolean {
    return this.stderr.isTTY === true
  }

  /** Writes bytes to stdout, waiting when the stream asks to. */
  async write(chunk: string | Uint8Array): Promise<void> {
    this.#progress?.clear()
    if (!this.stdout.write(chunk)) await once(this.stdout as unknown as NodeJS.EventEmitter, 'drain')
  }

  /** Writes one line to stdout. */
  line(text: string): Promise<void> {
    return this.write(`${text}\n`)
  }

  /** Writes one value as compact JSON on its own line. */
  json(value: unknown): Promise<void> {
    return this.line(JSON.stringify(value))
  }

  /** A line for the user on stderr (summaries, plans, warnings): not part of the result. */
  note(text: string): void {
    this.#progress?.clear()
    this.stderr.write(`${text}\n`)
  }

  /**
   * An event of the library (`--verbose`), on stderr: its one-line description, or under `--json`
   * the event as one JSON object on its own line.
   */
  event(event: S3ExchangeEvent, json: boolean): void {
    this.note(json ? JSON.stringify(event) : describeEvent(event))
  }

  /** A progress line on stderr, drawn only when stderr is a terminal. */
  progress(label: string, options: ProgressOptions = {}): Progress {
    this.#progress?.done()
    const progress = new Progress(this.interactive ? this.stderr : undefined, label, options, () => {
      if (this.#progress === progress) this.#progress = undefined
    })
    this.#progress = progress
    return progress
  }
}

/** Redraw at most this often. */
const REDRAW_MS = 100

/**
 * One line of progress on a terminal: `label  340/1000 files  [#######-------------]  12.3 MiB`,
 * redrawn in place at most every 100 ms; a no-op when stderr is not a terminal.
 */
export class Progress {
  readonly #stream: OutputStream | undefined
  readonly #label: string
  readonly #unit: string
  #total: number | undefined
  #totalBytes: number | undefined
  #count = 0
  #bytes = 0
  #detail = ''
  #drawnAt = 0
  #drawn = false
  #onDone: () => void

  constructor(stream: OutputStream | undefined, label: string, options: ProgressOptions, onDone: () => void) {
    this.#stream = stream
    this.#label = label
    this.#unit = options.unit ?? 'items'
    this.#total = options.total
    this.#totalBytes = options.totalBytes
    this.#onDone = onDone
  }

  /**
   * Takes the figures a library call reports (pass it as the call's `onProgress`): objects and
   * bytes done, and its totals when it knows them (else the line keeps its own).
   */
  readonly report = (progress: LibraryProgress): void => {
    this.#count = progress.loadedObjects
    this.#bytes = progress.loadedBytes
    if (progress.totalObjects !== undefined) this.#total = progress.totalObjects
    if (progress.totalBytes !== undefined) this.#totalBytes = progress.totalBytes
    this.#draw(false)
  }

  /** Counts `count` more units (and `bytes` more bytes). */
  tick(count = 1, bytes = 0): void {
    this.#count += count
    this.#bytes += bytes
    this.#draw(false)
  }

  /** Sets the total, once known. */
  setTotal(total: number): void {
    this.#total = total
    this.#draw(false)
  }

  /** Extra text at the end of the line (e.g. `3 shards`). */
  detail(text: string): void {
    this.#detail = text
    this.#draw(false)
  }

  /** Wipes the line (it is drawn again on the next tick). */
  clear(): void {
    if (!this.#drawn || !this.#stream) return
    this.#stream.write('\r\x1b[K')
    this.#drawn = false
  }

  /** Wipes the line for good. */
  done(): void {
    this.clear()
    this.#onDone()
  }

  #draw(force: boolean): void {
    if (!this.#stream) return
    const now = Date.now()
    if (!force && this.#drawn && now - this.#drawnAt < REDRAW_MS) return
    this.#drawnAt = now
    const parts = [this.#label]
    const total = this.#total
    if (total !== undefined && total > 0) {
      const width = 20
      const filled = Math.min(width, Math.floor((this.#count / total) * width))
      parts.push(`${this.#count}/${total} ${this.#unit}`, `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`)
    } else {
      parts.push(`${this.#count} ${this.#unit}`)
    }
    if (this.#totalBytes !== undefined) parts.push(`${formatBytes(this.#bytes)} / ${formatBytes(this.#totalBytes)}`)
    else if (this.#bytes > 0) parts.push(formatBytes(this.#bytes))
    if (this.#detail) parts.push(this.#detail)
    const columns = this.#stream.columns || 80
    const text = parts.join('  ').slice(0, Math.max(10, columns - 1))
    this.#stream.write(`\r\x1b[K${text}`)
    this.#drawn = true
  }
}

/** `1234567` → `1.2 MiB`; below 1 KiB, `512 B`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`
}

/**
 * An error as `s3x` prints it: `s3x: <message>` on one line, the typed error's own message
 * (which names the key, line or member); with `debug`, the stack and every `cause` below it.
 */
export function formatError(error: unknown, debug = false): string {
  if (debug) {
    const lines: string[] = []
    let current: unknown = error
    for (let depth = 0; current !== undefined && depth < 8; depth++) {
      const text = current instanceof Error ? (current.stack ?? `${current.name}: ${current.message}`) : String(current)
      lines.push(depth === 0 ? text : `caused by: ${text}`)
      current = current instanceof Error ? current.cause : undefined
    }
    return `s3x: ${lines.join('\n')}`
  }
  return `s3x: ${oneLine(messageOf(error))}`
}

/** Fields of an error that `errorJson` leaves out or writes itself. */
const NOT_FIELDS = new Set(['name', 'message', 'stack', 'cause'])

/**
 * An error as `s3x --json` prints it: `name`, `message` (as the one-line form says it), then the
 * error's own typed fields (`key`, `lineNumber`, `archiveKey`, `memberPath`, `statusCode`,
 * `uploadedKeys`, ...; for a usage error `command`, for a malformed URI `argument` and `uri`;
 * a Node error's `code` and `path`), and its `cause`, the same way. The SDK's `$`-fields are left
 * out. With `debug`, the `stack` of each.
 *
 * @example
 * ```ts
 * errorJson(new InvalidManifestError('bad JSON', { key: 'm.jsonl', lineNumber: 3 }))
 * // { name: 'InvalidManifestError', message: 'Invalid manifest (m.jsonl, line 3): bad JSON', key: 'm.jsonl', lineNumber: 3, reason: 'bad JSON' }
 * ```
 */
export function errorJson(error: unknown, debug = false): Record<string, unknown> {
  return describeError(error, debug, 0)
}

function describeError(error: unknown, debug: boolean, depth: number): Record<string, unknown> {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) }
  const json: Record<string, unknown> = { name: error.name, message: messageOf(error) }
  for (const [field, value] of Object.entries(error)) {
    if (NOT_FIELDS.has(field) || field.startsWith('$') || !isJsonValue(value, 0)) continue
    json[field] = value
  }
  if (error.cause !== undefined && depth < 8) json.cause = describeError(error.cause, debug, depth + 1)
  if (debug && error.stack) json.stack = error.stack
  return json
}

/** True for what JSON.stringify writes as it is: primitives, arrays and plain objects of them. */
function isJsonValue(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (depth > 4 || typeof value !== 'object') return false
  if (Array.isArray(value)) return value.every((item) => isJsonValue(item, depth + 1))
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return false
  return Object.values(value).every((item) => isJsonValue(item, depth + 1))
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  // The AWS SDK and Node name their errors; a bare message can be cryptic without the name.
  const message = error.message || error.name
  if (hasCause(error, 'NoSuchBucket')) return `${message} (the bucket does not exist)`
  return hasCause(error, 'CredentialsProviderError')
    ? `${message} (set S3_AWS_ACCESS_KEY_ID and S3_AWS_SECRET_ACCESS_KEY, or name an AWS profile with --profile or AWS_PROFILE)`
    : message
}

/** True when the error, or one of its causes, has this name. */
function hasCause(error: unknown, name: string): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth++) {
    if (current.name === name) return true
  }
  return false
}

/** Collapses a multi-line message to one line. */
export function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ')
}
