/**
 * Benchmark plumbing: a server process, clients, timing with medians, child processes that
 * report their own peak RSS, and the table that goes into bench/RESULTS.md.
 */
import { type ChildProcess, spawn } from 'node:child_process'
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

/** A client for the bench server. The SDK's default checksum settings are kept (say so in results). */
export function benchClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    forcePathStyle: true,
  })
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

/** Runs a bench child script and returns the JSON it prints on its last line. */
export function runChild<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${script} exited with ${code}`))
      const last = output.trim().split('\n').at(-1) ?? ''
      resolve(JSON.parse(last) as T)
    })
  })
}

/** Peak resident set size of this process so far, in MB. */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ratio: (n: number) => `${n.toFixed(2)}×`,
  pct: (n: number) => `${Math.round(n * 100)}%`,
  s: (n: number) => `${n.toFixed(3)} s`,
}

/** One row of a results table. */
export interface Row {
  workload: string
  ours: string
  baseline: string
  ratio: string
  python: string
  target: string
  met: boolean
}

export function table(rows: Row[]): string {
  const head =
    '| workload | s3exchange (TS) | baseline, same run | ratio | vs Python s3exchange | target | met |\n| --- | --- | --- | --- | --- | --- | --- |'
  return [
    head,
    ...rows.map(
      (r) => `| ${r.workload} | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.python} | ${r.target} | ${r.met ? 'yes' : '**no**'} |`,
    ),
  ].join('\n')
}
