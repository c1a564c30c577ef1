/**
 * The checks of `probeServer`, one method per concern: conditional PutObject, conditional
 * CompleteMultipartUpload, part sizes and the largest single PUT, reads (ranges, `If-Match`),
 * listing and deletes. Each sends its requests through {@link ProbeSession}, records what it asked
 * and what the server answered, and returns its fields of {@link ServerCapabilities}.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3'
import {
  ifMatchValue,
  isRefusal,
  MiB,
  mebibytes,
  outcome,
  S3_MIN_PART_SIZE,
  STALE_ETAG,
  status,
  statuses,
  unquote,
} from './probe-answers.js'
import { ProbeSession } from './probe-session.js'
import { type ConditionalPutForm, formatSize, type ServerCapabilities } from './server-capabilities.js'

/** Runs every check, in order, and gathers the server's capabilities. */
export class Probe extends ProbeSession {
  async run(bound: number): Promise<ServerCapabilities> {
    const puts = await this.#conditionalPuts()
    const completes = await this.#conditionalCompletes(puts.conditionalPut)
    const minPartSize = await this.#minPartSize()
    const single = await this.#maxSinglePut(bound)
    const ranges = await this.#rangedGets()
    const lists = await this.#listing()
    const deletes = await this.#deletes()
    return { ...puts, ...completes, minPartSize, ...single, ...ranges, ...lists, ...deletes }
  }

  // ------------------------------------------------------------------------------ conditional PUT

  async #conditionalPuts(): Promise<Pick<ServerCapabilities, 'putIfNoneMatch' | 'conditionalPut' | 'putIfMatchMissing'>> {
    const key = this.key('conditional-put')
    await this.mustPut(key, 'version 1')

    // If-None-Match: * on a new key must be written; over an existing one, refused with 412.
    const fresh = await this.put(this.key('if-none-match-new'), 'new', { IfNoneMatch: '*' })
    const existing = await this.put(key, 'version 2', { IfNoneMatch: '*' })
    const putIfNoneMatch = !fresh.ok ? 'refused' : outcome(existing)
    this.record('putIfNoneMatch', 'PUT If-None-Match: * (new key; existing key)', `${putIfNoneMatch} (${statuses(fresh, existing)})`)

    // If-Match with a stale ETag must be refused, with the current one written; in either form.
    const quotedStale = await this.put(key, 'version 3', { IfMatch: `"${STALE_ETAG}"` })
    const quotedCurrent = await this.put(key, 'version 4', { IfMatch: `"${await this.etag(key)}"` })
    const bareStale = await this.put(key, 'version 5', { IfMatch: STALE_ETAG })
    const bareCurrent = await this.put(key, 'version 6', { IfMatch: await this.etag(key) })
    const quoted = isRefusal(quotedStale) && quotedCurrent.ok
    const bare = isRefusal(bareStale) && bareCurrent.ok
    const conditionalPut: ConditionalPutForm = quoted && bare ? 'both' : quoted ? 'quoted' : bare ? 'bare' : 'none'
    this.record(
      'conditionalPut',
      'PUT If-Match "etag" / etag (stale; current)',
      `${conditionalPut} ("etag": ${statuses(quotedStale, quotedCurrent)}; etag: ${statuses(bareStale, bareCurrent)})`,
    )

    const missingKey = this.key('if-match-missing')
    const missing = await this.put(missingKey, 'never', { IfMatch: ifMatchValue(conditionalPut, STALE_ETAG) })
    const putIfMatchMissing = missing.ok ? 'written' : (missing.status ?? 0)
    this.record(
      'putIfMatchMissing',
      'PUT If-Match on a missing key',
      missing.ok ? `written (${status(missing)})` : `refused (${status(missing)})`,
    )
    return { putIfNoneMatch, conditionalPut, putIfMatchMissing }
  }

  // ------------------------------------------------------------------------- conditional complete

  async #conditionalCompletes(
    form: ConditionalPutForm,
  ): Promise<Pick<ServerCapabilities, 'completeIfNoneMatch' | 'completeIfMatch' | 'conditionalComplete' | 'completeEtag'>> {
    const key = this.key('conditional-complete')
    // Created by a completion with If-None-Match: * on a new key: it must be written, with an ETag in the answer.
    const created = await this.multipart(key, [Buffer.from('created')], { IfNoneMatch: '*' })
    const completeEtag = created.ok && unquote(created.value.ETag) !== ''
    this.record(
      'completeEtag',
      'Complete: ETag in the answer',
      created.ok
        ? completeEtag
          ? `yes (${created.value.ETag})`
          : `no (the answer's ETag is ${JSON.stringify(created.value.ETag ?? null)})`
        : `no completion (${status(created)})`,
    )
    const overwritten = await this.multipart(key, [Buffer.from('over an existing key')], { IfNoneMatch: '*' })
    const completeIfNoneMatch = !created.ok ? 'refused' : outcome(overwritten)
    this.record(
      'completeIfNoneMatch',
      'Complete If-None-Match: * (new; existing)',
      `${completeIfNoneMatch} (${statuses(created, overwritten)})`,
    )

    const stale = await this.multipart(key, [Buffer.from('stale')], { IfMatch: ifMatchValue(form, STALE_ETAG) })
    let completeIfMatch = outcome(stale)
    let detail = `stale ${status(stale)}`
    if (completeIfMatch === 'honoured') {
      const current = await this.multipart(key, [Buffer.from('current')], { IfMatch: ifMatchValue(form, await this.etag(key)) })
      if (!current.ok) completeIfMatch = 'refused'
      detail += `, current ${status(current)}`
    }
    this.record(
      'completeIfMatch',
      `Complete If-Match ${form === 'bare' ? 'etag' : '"etag"'} (stale; current)`,
      `${completeIfMatch} (${detail})`,
    )
    const conditionalComplete = completeIfNoneMatch === 'honoured' && completeIfMatch === 'honoured'
    this.record('conditionalComplete', 'Conditional multipart commit', conditionalComplete ? 'yes' : 'no')
    return { completeIfNoneMatch, completeIfMatch, conditionalComplete, completeEtag }
  }

  // ---------------------------------------------------------------------------------- part sizes

  async #minPartSize(): Promise<number | null> {
    const key = this.key('min-part-size')
    const tiny = await this.multipart(key, [Buffer.from('a'), Buffer.from('b')])
    if (tiny.ok) {
      this.record('minPartSize', 'Non-last part of 1 B', `accepted (${status(tiny)}): no minimum enforced`)
      return 1
    }
    const s3Minimum = await this.multipart(key, [Buffer.alloc(S3_MIN_PART_SIZE), Buffer.from('b')])
    const minPartSize = s3Minimum.ok ? S3_MIN_PART_SIZE : null
    this.record(
      'minPartSize',
      'Non-last part of 1 B; of 5 MiB',
      `1 B refused (${status(tiny)}); 5 MiB ${s3Minimum.ok ? 'accepted' : 'refused'} (${status(s3Minimum)})`,
    )
    return minPartSize
  }

  async #maxSinglePut(bound: number): Promise<Pick<ServerCapabilities, 'maxSinglePut' | 'maxSinglePutRefused'>> {
    const key = this.key('single-put')
    const tried: string[] = []
    const accepts = async (size: number): Promise<boolean> => {
      const answer = await this.put(key, Buffer.alloc(size), {}, { refusalsOnly: false })
      tried.push(`${formatSize(size)} ${answer.ok ? 'taken' : `refused (${status(answer)})`}`)
      if (answer.ok)
        await this.send('DeleteObject', key, (o) => this.ctx.client.send(new DeleteObjectCommand({ Bucket: this.ctx.bucket, Key: key }), o))
      return answer.ok
    }
    if (await accepts(bound)) {
      this.record('maxSinglePut', `Largest single PUT (up to ${formatSize(bound)})`, `at least ${formatSize(bound)}`)
      return { maxSinglePut: bound, maxSinglePutRefused: null }
    }
    // Halve down to 1 MiB, then narrow between the largest taken and the smallest refused, to the MiB.
    let taken = 0
    let refused = bound
    for (let size = mebibytes(bound / 2); size >= MiB; size = mebibytes(size / 2)) {
      if (await accepts(size)) {
        taken = size
        break
      }
      refused = size
    }
    while (taken > 0 && refused - taken > MiB) {
      const middle = taken + mebibytes((refused - taken) / 2)
      if (await accepts(middle)) taken = middle
      else refused = middle
    }
    this.record(
      'maxSinglePut',
      `Largest single PUT (up to ${formatSize(bound)})`,
      `${formatSize(taken)} (${formatSize(refused)} refused); tried ${tried.join(', ')}`,
    )
    return { maxSinglePut: taken, maxSinglePutRefused: refused }
  }

  // -------------------------------------------------------------------------------------- reads

  async #rangedGets(): Promise<Pick<ServerCapabilities, 'rangedGet' | 'rangePastEnd' | 'getIfMatch'>> {
    const key = this.key('ranges')
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251))
    await this.mustPut(key, bytes)
    const ranges: [string, number, number][] = [
      ['bytes=10-19', 10, 20],
      ['bytes=990-', 990, 1000],
      ['bytes=-10', 990, 1000],
    ]
    const seen: string[] = []
    let rangedGet = true
    for (const [range, from, to] of ranges) {
      const answer = await this.get(key, { Range: range })
      const right =
        answer.ok &&
        answer.status === 206 &&
        answer.value.contentRange === `bytes ${from}-${to - 1}/1000` &&
        Buffer.compare(answer.value.body, bytes.subarray(from, to)) === 0
      if (!right) rangedGet = false
      seen.push(
        `${range}: ${answer.ok ? `${answer.status}${answer.value.contentRange ? ` ${answer.value.contentRange}` : ''}` : status(answer)}${right ? '' : ' (wrong)'}`,
      )
    }
    this.record(
      'rangedGet',
      'GET Range a-b; a-; -n',
      rangedGet ? 'yes (206, the bytes asked for, Content-Range right)' : `no (${seen.join('; ')})`,
    )

    const pastEnd = await this.get(key, { Range: 'bytes=2000-2010' })
    const rangePastEnd = pastEnd.status ?? 0
    this.record('rangePastEnd', 'GET Range past the end', String(rangePastEnd))

    const etag = await this.etag(key)
    const current = await this.get(key, { IfMatch: `"${etag}"` })
    const stale = await this.get(key, { IfMatch: `"${STALE_ETAG}"` })
    const getIfMatch = current.ok && current.status === 200 && !stale.ok && stale.status === 412
    this.record(
      'getIfMatch',
      'GET If-Match "etag" (current; stale)',
      `${getIfMatch ? 'honoured' : 'not honoured'} (${statuses(current, stale)})`,
    )
    return { rangedGet, rangePastEnd, getIfMatch }
  }

  // --------------------------------------------------------------------------- listing, deletes

  async #listing(): Promise<Pick<ServerCapabilities, 'listPaging' | 'listMaxKeys'>> {
    const prefix = this.key('list/')
    const keys = ['a', 'b', 'c'].map((name) => `${prefix}${name}`)
    for (const key of keys) await this.mustPut(key, key)
    const first = await this.list(prefix, 2)
    const second = first.NextContinuationToken ? await this.list(prefix, 2, first.NextContinuationToken) : undefined
    const pages = [first, second].map((page) => (page?.Contents ?? []).map((object) => object.Key))
    const listPaging =
      first.IsTruncated === true &&
      second !== undefined &&
      second.IsTruncated !== true &&
      JSON.stringify(pages.flat()) === JSON.stringify(keys)
    this.record(
      'listPaging',
      'ListObjectsV2 paging (MaxKeys 2, 3 keys)',
      `${listPaging ? 'yes' : 'no'} (pages of ${pages.map((page) => page.length).join(' and ')} keys)`,
    )
    const wide = await this.list(prefix, 10_000)
    const listMaxKeys = wide.MaxKeys !== undefined && wide.MaxKeys < 10_000 ? wide.MaxKeys : null
    this.record(
      'listMaxKeys',
      'ListObjectsV2 MaxKeys 10000 answered as',
      wide.MaxKeys === undefined ? 'none answered' : `${wide.MaxKeys}${listMaxKeys === null ? ' (no cap shown)' : ' (its cap)'}`,
    )
    return { listPaging, listMaxKeys }
  }

  async #deletes(): Promise<Pick<ServerCapabilities, 'deleteObjects' | 'deleteObjectsMaxKeys'>> {
    const prefix = this.key('delete/')
    const keys = ['a', 'b', 'c'].map((name) => `${prefix}${name}`)
    for (const key of keys) await this.mustPut(key, key)
    const deleted = await this.deleteObjects(keys)
    const left = await this.list(prefix, 10)
    const deleteObjects = deleted.ok && (deleted.value.Errors ?? []).length === 0 && (left.Contents ?? []).length === 0
    this.record(
      'deleteObjects',
      'DeleteObjects (3 keys)',
      `${deleteObjects ? 'yes' : 'no'} (${status(deleted)}; ${(left.Contents ?? []).length} of 3 keys left)`,
    )
    // 1,001 keys that do not exist: a server that keeps to S3's limit refuses the request (400).
    const many = await this.deleteObjects(Array.from({ length: 1001 }, (_, i) => `${prefix}none-${i}`))
    const deleteObjectsMaxKeys = many.ok ? null : 1000
    this.record(
      'deleteObjectsMaxKeys',
      'DeleteObjects (1,001 keys)',
      many.ok ? `taken (${status(many)}): more than 1,000` : `refused (${status(many)}): at most 1,000`,
    )
    return { deleteObjects, deleteObjectsMaxKeys }
  }
}
