/**
 * Runs the benchmarks and writes bench/RESULTS.md. Every figure stands beside a baseline measured
 * in the same run (the raw AWS SDK doing the same job), and beside Python s3exchange's reference
 * figures where they apply.
 *
 *   npx pnpm@10 bench                         # every section (about 25 minutes on 2 quiet cores, estimated)
 *   npx pnpm@10 bench --only cold             # one section, or several: --only cold,latency,bandwidth
 *   npx pnpm@10 bench --quick                 # smaller sizes, fewer runs (5–10 minutes); prints, writes no file
 *   npx pnpm@10 bench --quick --only latency --out /tmp/latency.md
 *   npx pnpm@10 bench --runs 7                # runs per figure, for every section
 *
 * Sections: reads, random, writes (warm, in one process, issues 2, 3 and 5), cold, latency,
 * bandwidth (fresh processes, issue 15), and zstd (zstd against gzip shards, issue 16). A full run writes bench/RESULTS.md (or `--out`): the
 * sections it ran replace theirs, every other section of the file (the soak's, sections not run)
 * is kept as it was. `--quick` (or BENCH_QUICK=1) writes only with `--out`: its figures are for
 * developers, not for the record.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { runBandwidthBenches } from './bandwidth.ts'
import { runColdBenches } from './cold.ts'
import { type BenchTarget, PYTHON_FOOTNOTE } from './context.ts'
import { FULL_SIZES, QUICK_SIZES } from './datasets.ts'
import { runLatencyBenches } from './latency.ts'
import { benchClient, MAX_SOCKETS, type Row, startServerProcess, table } from './lib.ts'
import { runRandomBenches } from './random.ts'
import { prepareReadData, runReadBenches } from './read.ts'
import { runWriteBenches } from './write.ts'
import { runZstdBenches } from './zstd.ts'

/** The sections, by the name `--only` takes, with their titles in RESULTS.md, in the file's order. */
const TITLES = {
  reads: 'Reads',
  random: 'Random access and parallel reads',
  writes: 'Writes',
  cold: 'Cold processes',
  latency: 'Latency (time to first byte)',
  bandwidth: 'Bandwidth per connection',
  zstd: 'zstd against gzip shards',
} as const
type Section = keyof typeof TITLES
const SECTIONS = Object.keys(TITLES) as Section[]

const { values: flags } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: process.env.BENCH_QUICK === '1' },
    runs: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (flags.help) {
  console.log(`npx pnpm@10 bench [--only SECTION[,SECTION…]] [--quick] [--runs N] [--out FILE]

  --only    sections to run (default: all): ${SECTIONS.join(', ')}
  --quick   smaller sizes and fewer runs, for developers; writes a file only with --out
  --runs    runs per figure for every section (default: warm 3, cold 5, latency and bandwidth 3; quick 1, 3, 1)
  --out     the file to write (default: bench/RESULTS.md, unless --quick); sections not run are kept`)
  process.exit(0)
}
const only = new Set((flags.only ?? SECTIONS.join(',')).split(',').map((name) => name.trim()))
for (const name of only)
  if (!SECTIONS.includes(name as Section)) throw new Error(`--only: unknown section ${name} (sections: ${SECTIONS.join(', ')})`)
const runsFlag = flags.runs === undefined ? undefined : Number(flags.runs)
if (runsFlag !== undefined && !(Number.isSafeInteger(runsFlag) && runsFlag >= 1))
  throw new Error(`--runs must be a positive integer, not ${flags.runs}`)
const quick = flags.quick === true
const sizes = quick ? QUICK_SIZES : FULL_SIZES
/** Runs per figure: `--runs`, or the section's default for full or quick runs. */
const runs = (full: number, fast: number) => runsFlag ?? (quick ? fast : full)
const out = flags.out ?? (quick ? undefined : new URL('./RESULTS.md', import.meta.url).pathname)

const machine = `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
const today = new Date().toISOString().slice(0, 10)
const mode = quick ? ' **Quick mode** (smaller sizes, fewer runs: for developers, not for comparison).' : ''
const log = (line: string) => console.log(line)

const clients = `S3 clients: the AWS SDK's defaults (keep-alive, response checksum validation \`WHEN_SUPPORTED\`) with \`maxSockets: ${MAX_SOCKETS}\`, so that no request waits for a socket.`

/** How a section runs and what its text says. */
interface SectionSpec {
  /** Runs per figure: full, quick. */
  runs: [number, number]
  /** What comes after "Run on …": how the figures were made. */
  intro: (runs: number) => string
  /** The rows quote the Python reference figures of issue 15 (with their footnote). */
  pythonReference?: boolean
  run: (runs: number) => Promise<Row[]>
}

const warmIntro = (n: number) => `Each figure is the median of ${n} run(s), ours and the baseline interleaved in one process after a
warm-up; big-shard reads and writes run in child processes of their own so that peak RSS is theirs
alone. ${clients} Python figures are the reference measurements of DESIGN.md (Python s3exchange 0.1.1
with boto3, same machine type, same server), not of this run.`
const freshRuns = (n: number) =>
  `Each figure comes from ${n} fresh process(es) per contender, run in turn: the median, and the lowest and highest in brackets.`

const server = await startServerProcess()
const client = benchClient(server.endpoint)
const target: BenchTarget = { client, endpoint: server.endpoint, bucket: 'bench' }

const specs: Record<Section, SectionSpec> = {
  reads: {
    runs: [3, 1],
    intro: warmIntro,
    run: async (n) => {
      await prepareReadData(client, target.bucket, sizes.bigShardsMiB)
      return runReadBenches(client, server.endpoint, target.bucket, sizes.bigShardsMiB, n)
    },
  },
  random: { runs: [3, 1], intro: warmIntro, run: (n) => runRandomBenches(client, server.endpoint, target.bucket, n) },
  writes: { runs: [3, 1], intro: warmIntro, run: (n) => runWriteBenches(client, server.endpoint, target.bucket, !quick, n) },
  cold: {
    runs: [5, 3],
    pythonReference: true,
    intro: (n) => `${freshRuns(n)} The order is ours, raw SDK, boto3, ours, … A process makes its
client, does the work and exits, as a script or a batch job does: no warm-up, its first connections
count; the timer starts after the imports. Peak RSS is the process's own (the highest of its runs).
The raw SDK does the same work at the same concurrency as the library's defaults, in a fresh Node
process each. The tar.gz shards are in the layout Python s3exchange writes (one gzip stream each,
internal manifest first), written by this library's \`ShardWriter\` with \`seekable: false\` (no shard set
written by the Python library exists here). ${clients}`,
    run: (n) => runColdBenches(target, sizes, n, log),
  },
  latency: {
    runs: [3, 1],
    pythonReference: true,
    intro: (n) => `Through the test proxy of \`@s3exchange/testing\` with \`latencyMs\`: every request held
20 ms (then 50 ms) before it is forwarded, as a real S3 takes to answer. ${freshRuns(n)} Ours at the
given concurrency (\`iterObjects\` \`concurrency\` for loose objects, \`shardConcurrency\` for shards),
the raw SDK at the same; at the default concurrency, boto3 reading 200 of the objects one at a time
(as Python s3exchange does) anchors Python's figure. ${clients} The proxy runs in the bench's own
process, the server in another, each client in its own.`,
    run: (n) => runLatencyBenches(target, sizes, n, log),
  },
  bandwidth: {
    runs: [3, 1],
    intro: (n) => `Through the test proxy of \`@s3exchange/testing\` with \`bytesPerSecondPerConnection: 25e6\`
(a token bucket per connection and direction, bursts of 20 ms): one connection carries 25 MB/s, as one
connection to S3 carries some tens of MB/s; N connections carry N times that. ${freshRuns(n)} The
library at its defaults. MB = 10⁶ bytes. ${clients}`,
    run: (n) => runBandwidthBenches(target, sizes, n, log),
  },
  zstd: {
    runs: [3, 1],
    intro: (n) => `The same text-like members written as seekable .tar.zst (zstd level 3) and seekable .tar.gz
(gzip level 6), this library's defaults for each; then, interleaved in one process after a warm-up,
the median of ${n} run(s) of each read. zstd's figures stand beside gzip's; the ratio is how many
times faster (or smaller) zstd is. Reading zstd needs Node ≥ 22.15; Python s3exchange reads only
gzip. ${clients}`,
    run: (n) => runZstdBenches(client, target.bucket, n, quick),
  },
}

/** The sections written by this run, by title. */
const written: Record<string, string> = {}
const started = Date.now()
try {
  await client.send(new CreateBucketCommand({ Bucket: target.bucket }))
  log(`server ${server.endpoint}`)
  for (const section of SECTIONS) {
    if (!only.has(section)) continue
    const spec = specs[section]
    const t = Date.now()
    const n = runs(...spec.runs)
    log(`${section}…`)
    const rows = await spec.run(n)
    const python = spec.pythonReference ? `\n${PYTHON_FOOTNOTE}\n` : ''
    written[TITLES[section]] = `## ${TITLES[section]}

Run on ${today} (${machine}; ${took(t)}).${mode} ${spec.intro(n)}

${table(rows, spec.pythonReference ? 'Python s3exchange (reference¹)' : undefined)}
${python}`
  }
} finally {
  client.destroy()
  await server.stop()
}

const preamble = `# Benchmark results

Written by \`npx pnpm@10 bench\` (bench/run.ts), against fauxqs on loopback in a process of its own.
Each section says when and how it was run (\`--only\` runs some sections and keeps the others as they
were). Every figure stands beside its baseline measured in the same run; the machines here are shared
and noisy: compare ratios within a section, not absolute figures across runs.
`
const report = `${preamble}\n${Object.values(written).join('\n')}`
console.log(report)
console.log(`bench: ${took(started)} in all`)
if (out) {
  await writeFile(out, mergeSections(await readFile(out, 'utf8').catch(() => ''), preamble, written))
  console.log(`written to ${out}`)
}

/** Minutes (or seconds) since `start`. */
function took(start: number): string {
  const seconds = (Date.now() - start) / 1000
  return seconds >= 90 ? `${(seconds / 60).toFixed(1)} min` : `${Math.round(seconds)} s`
}

/**
 * The file with `fresh` sections replacing those of `current` of the same title, in the order of
 * {@link TITLES} first, then every other section of `current` (the soak's) as it was.
 */
function mergeSections(current: string, preamble: string, fresh: Record<string, string>): string {
  const sections = new Map<string, string>()
  for (const section of current.split(/^(?=## )/m).filter((part) => part.startsWith('## ')))
    sections.set(section.split('\n', 1)[0]?.slice(3).trim() as string, section.trimEnd())
  for (const [title, section] of Object.entries(fresh)) sections.set(title, section.trimEnd())
  const order: string[] = Object.values(TITLES)
  const titles = [...order.filter((title) => sections.has(title)), ...[...sections.keys()].filter((title) => !order.includes(title))]
  return `${preamble}\n${titles.map((title) => sections.get(title)).join('\n\n')}\n`
}
