/**
 * `s3x doctor`: what the S3 server behind the configured endpoint and bucket guarantees, and what
 * s3exchange does on it. Runs `probeServer` (conditional writes in both ETag forms, conditional
 * multipart completion, the completion's ETag, the minimum part size, the largest single PUT up to
 * a bound, ranged GETs, DeleteObjects, ListObjectsV2 paging) under a scratch prefix that it empties
 * afterwards, then prints one row per check and one statement per topic (`append_parts`, multipart
 * writes, single PUTs, reads, deletes, listing), each marked ok, limited or unsafe.
 *
 * @example
 * ```sh
 * s3x doctor --bucket my-bucket --prefix tmp/
 * # check                                         result
 * # PutObject If-None-Match: * (a new key, …)     honoured (200, 412 PreconditionFailed)
 * # …
 * # [limited] append_parts: safe under concurrent writers for roots up to 64 MiB …
 * s3x doctor --json | jq .capabilities.conditionalPut     # "bare"
 * ```
 */
import { probeServer, type ServerProbe } from 's3exchange'
import { parseSizeFlag } from '../args.js'
import type { Command } from '../command.js'

export const doctor: Command = {
  name: 'doctor',
  usage: 'doctor [--prefix P] [--max-single-put SIZE] [--json]',
  summary: 'check what the S3 server guarantees, and what s3exchange does on it',
  description: `Probes the server and bucket s3x is configured for: conditional PutObject (If-None-Match: *,
If-Match with the quoted and with the bare ETag, If-Match on a missing key), conditional
CompleteMultipartUpload, the ETag in the completion's answer, the minimum part size, the largest
single PUT (up to --max-single-put), ranged GETs and 416 past the end, If-Match on GET,
DeleteObjects and its limit, and ListObjectsV2 paging. It writes under <prefix>.s3x-probe-<random>/
(about twice --max-single-put in all) and deletes everything there when done, also on failure.

Prints a table of the checks with the HTTP statuses seen, then what s3exchange does on this server
(ok, limited, unsafe): whether append_parts is safe under concurrent writers, and up to what size.
The exit code is 0 when the probe ran, whatever it found.

Example:
  s3x doctor --prefix scratch/
  s3x doctor --json`,
  options: { prefix: { type: 'string' }, 'max-single-put': { type: 'string' }, json: { type: 'boolean' } },
  optionHelp: [
    ['--prefix P', 'write the scratch objects under P (default: the bucket root)'],
    ['--max-single-put SIZE', 'largest single PUT to try, e.g. 16MiB (default 64MiB)'],
    ['--json', 'print the probe as one JSON object: capabilities, checks, behaviour'],
  ],
  args: { min: 0, max: 0 },
  async run({ flags, store, output }) {
    const bound =
      typeof flags['max-single-put'] === 'string' ? parseSizeFlag(flags['max-single-put'], '--max-single-put', 'doctor') : undefined
    const prefix = typeof flags.prefix === 'string' ? flags.prefix : undefined
    const probe = await probeServer(store().context(), { prefix, maxSinglePutBound: bound })
    if (flags.json) {
      await output.json(probe)
      return 0
    }
    for (const line of doctorReport(probe, await endpointOf(store().client))) await output.line(line)
    return 0
  },
}

/** The lines `s3x doctor` prints for a probe: the checks as a table, then the statements, wrapped to `columns`. */
export function doctorReport(probe: ServerProbe, endpoint: string, columns = 100): string[] {
  const width = Math.max(5, ...probe.checks.map((check) => check.check.length)) + 2
  const topic = Math.max(...probe.behaviour.map((each) => each.topic.length)) + 2
  return [
    `server   ${endpoint}`,
    `bucket   ${probe.bucket} (scratch prefix ${probe.scratchPrefix}, emptied)`,
    '',
    `${'check'.padEnd(width)}result`,
    ...probe.checks.flatMap((check) =>
      wrap(check.result, columns - width).map((line, i) => `${(i === 0 ? check.check : '').padEnd(width)}${line}`),
    ),
    '',
    'What s3exchange does on this server:',
    ...probe.behaviour.flatMap((each) => {
      const head = `  ${`[${each.verdict}]`.padEnd(10)}${`${each.topic}:`.padEnd(topic)}`
      return wrap(each.text, columns - head.length).map((line, i) => `${i === 0 ? head : ' '.repeat(head.length)}${line}`)
    }),
  ]
}

/** `text` in lines of at most `width` characters, broken at spaces (a longer word stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  // A size stays on one line with its unit.
  for (const word of text.replace(/(\d) (B|KiB|MiB|GiB|TiB)\b/g, '$1\u00a0$2').split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  return [...lines, line].map((each) => each.replaceAll('\u00a0', ' '))
}

/** The client's endpoint as a URL, or `AWS S3 (region)` when it has none of its own. */
async function endpointOf(client: ReturnType<Parameters<Command['run']>[0]['store']>['client']): Promise<string> {
  const region = await client.config.region()
  if (!client.config.isCustomEndpoint) return `AWS S3 (${region})`
  const endpoint = await client.config.endpoint?.()
  if (!endpoint) return `(region ${region})`
  return `${endpoint.protocol}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ''}${endpoint.path === '/' ? '' : endpoint.path}`
}
