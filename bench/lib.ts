/**
 * Benchmark plumbing: a server process, clients, timing with medians, child processes that
 * report their own peak RSS, and the table that goes into bench/RESULTS.md.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { S3Client } from '@aws-sdk/client-s3'

export interface BenchServer {
  endpoint: string
  stop(): Promise<void>
}

/** Starts bench/server.ts in a child process. */
export async function startServerProcess(): Promise<BenchServer> {
  const child = spawn(process.execPath, [new URL('./server.ts', import.meta.url).pathname], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await firstLine(child)
  const { endpoint } = JSON.parse(line) as { endpoint: string }
  return {
    endpoint,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve())
        child.stdin?.end()
      }),
  }
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.once('line', (line) => {
      lines.close()
      resolve(line)
    })
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
  })
}

/** Sockets a bench client may open to the server: above every concurrency the benches try (64), so the SDK's default of 50 never queues a request. */
export const MAX_SOCKETS = 256

/**
 * A client for the bench server: the SDK's defaults (keep-alive, checksums `WHEN_SUPPORTED`; say so
 * in results) but for `maxSockets` ({@link MAX_SOCKETS}).
 */
export function benchClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    forcePathStyle: true,
    requestHandler: { httpAgent: { maxSockets: MAX_SOCKETS } },
  })
}

/** Runs `fn` on every item, `concurrency` at a time. */
export async function inParallel<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T)
    }),
  )
}

/** Seconds taken by `fn`. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - start) / 1e9
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/**
 * Runs each contender once to warm up (JIT, connections), then `runs` times interleaved
 * (a, b, a, b, …) so that the machine's noise falls on both alike, and returns the median
 * seconds of each.
 */
export async function compare(runs: number, contenders: Record<string, () => Promise<unknown>>): Promise<Record<string, number>> {
  for (const fn of Object.values(contenders)) await fn()
  const samples: Record<string, number[]> = {}
  for (let run = 0; run < runs; run++) {
    for (const [name, fn] of Object.entries(contenders)) {
      const seconds = await time(fn)
      samples[name] ??= []
      samples[name].push(seconds)
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]))
}

/** Runs a bench child script (of bench/, in a fresh Node process) and returns the JSON it prints on its last line. */
export function runChild<T>(script: string, args: string[]): Promise<T> {
  return runProcess<T>(process.execPath, [new URL(script, import.meta.url).pathname, ...args])
}

/** Runs a command and returns the JSON it prints on its last line. */
export function runProcess<T>(command: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${command} ${args[0]} exited with ${code}`))
      const last = output.trim().split('\n').at(-1) ?? ''
      resolve(JSON.parse(last) as T)
    })
  })
}

/** The median and the spread (lowest, highest) of some figures. */
export interface Spread {
  median: number
  min: number
  max: number
  runs: number
}

export function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length }
}

/**
 * Peak resident set size of this process so far, in MB (2^20 bytes). On Linux, `VmHWM` of
 * /proc/self/status: the peak of this program's own memory. (`getrusage`'s `maxRSS`, which
 * `process.resourceUsage()` reports, also counts the parent's resident set at the fork that
 * started the process: a child of a parent holding 700 MB reports at least 700 MB.)
 */
export function peakRssMb(): number {
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileIfPresent('/proc/self/status'))
  return Number(hwm?.[1] ?? process.resourceUsage().maxRSS) / 1024
}

function readFileIfPresent(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ratio: (n: number) => `${n.toFixed(2)}×`,
  pct: (n: number) => `${Math.round(n * 100)}%`,
  s: (n: number) => `${n.toFixed(3)} s`,
  /** `1,044 obj/s (1,010–1,090)`: the median and, over several runs, the lowest and highest. */
  spread: (figures: Spread, unit: string) =>
    `${fmt.int(figures.median)} ${unit}${figures.runs > 1 ? ` (${fmt.int(figures.min)}–${fmt.int(figures.max)})` : ''}`,
}

/** One row of a results table. */
export interface Row {
  workload: string
  ours: string
  baseline: string
  ratio: string
  python: string
  target: string
  /** Whether the target is met; undefined for a row without a target. */
  met: boolean | undefined
}

/** A results table; `python` names the Python column (default: `vs Python s3exchange`). */
export function table(rows: Row[], python = 'vs Python s3exchange'): string {
  const head = `| workload | s3exchange (TS) | baseline, same run | ratio | ${python} | target | met |\n| --- | --- | --- | --- | --- | --- | --- |`
  const met = (r: Row) => (r.met === undefined ? '—' : r.met ? 'yes' : '**no**')
  return [
    head,
    ...rows.map((r) => `| ${r.workload} | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.python} | ${r.target} | ${met(r)} |`),
  ].join('\n')
}
