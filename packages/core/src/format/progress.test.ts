/**
 * Progress figures and the event hook on arrays, without S3: a counter's reports add up to what
 * it was given, only grow, carry totals only when given; a call without a callback has no counter;
 * a throwing event hook is ignored, and `logEvents` writes each event at its level.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { describeEvent, emitEvent, eventLevel, logEvents, type S3ExchangeEvent } from './events.js'
import { type Progress, ProgressCounter, progressCounter } from './progress.js'

describe('ProgressCounter', () => {
  it('reports running sums of parts and objects, monotonic, each with the key it is about', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ bytes: fc.nat(1 << 24), object: fc.boolean() }), { maxLength: 40 }), (steps) => {
        const reports: Progress[] = []
        const counter = new ProgressCounter((progress) => reports.push(progress))
        for (const [i, step] of steps.entries()) {
          if (step.object) counter.addObjects(1, step.bytes, `k${i}`)
          else counter.addBytes(step.bytes, `k${i}`)
        }
        expect(reports).toHaveLength(steps.length)
        let bytes = 0
        let objects = 0
        for (const [i, step] of steps.entries()) {
          bytes += step.bytes
          if (step.object) objects++
          expect(reports[i]).toStrictEqual({ loadedBytes: bytes, loadedObjects: objects, key: `k${i}` })
        }
        expect(counter.loadedBytes).toBe(bytes)
        expect(counter.loadedObjects).toBe(objects)
      }),
    )
  })

  it('carries the totals it was given, and those set later, in every report after', () => {
    const reports: Progress[] = []
    const counter = new ProgressCounter((progress) => reports.push(progress), { totalBytes: 10 })
    counter.addBytes(4)
    counter.setTotals({ totalObjects: 2 })
    counter.addObjects(2, 6)
    expect(reports).toStrictEqual([
      { loadedBytes: 4, loadedObjects: 0, totalBytes: 10 },
      { loadedBytes: 10, loadedObjects: 2, totalBytes: 10, totalObjects: 2 },
    ])
  })

  it('throws what the callback throws (the call fails with it)', () => {
    const counter = new ProgressCounter(() => {
      throw new Error('stop')
    })
    expect(() => counter.addBytes(1)).toThrow('stop')
  })

  it('is not made without a callback', () => {
    expect(progressCounter(undefined)).toBeUndefined()
    expect(progressCounter({})).toBeUndefined()
    expect(progressCounter({ onProgress: () => {} })).toBeInstanceOf(ProgressCounter)
  })
})

const EVENTS: S3ExchangeEvent[] = [
  { type: 'read-resumed', key: 'a.tar', offset: 1048576, attempt: 1, reason: 'aborted' },
  { type: 'write-retried', key: 'm.jsonl', attempt: 2, reason: 'lost-race', status: 412 },
  { type: 'write-retried', key: 'm.jsonl', attempt: 1, reason: 'slow-down', status: 503 },
  { type: 'capability-learned', capability: 'ifMatchForm', value: 'bare', key: 'm.jsonl' },
  { type: 'fallback', key: 'x.bin', fallback: 'etag-by-head', reason: 'no ETag' },
  { type: 'fallback', key: 'a#b', fallback: 'ordinary-key', reason: 'no archive a' },
]

describe('events', () => {
  it('a hook that throws is ignored; no hook is fine', () => {
    const seen: S3ExchangeEvent[] = []
    const hook = (event: S3ExchangeEvent) => {
      seen.push(event)
      throw new Error('broken hook')
    }
    for (const event of EVENTS) expect(() => emitEvent({ onEvent: hook }, event)).not.toThrow()
    expect(seen).toStrictEqual(EVENTS)
    expect(() => emitEvent({}, EVENTS[0] as S3ExchangeEvent)).not.toThrow()
    expect(() => emitEvent(undefined, EVENTS[0] as S3ExchangeEvent)).not.toThrow()
  })

  it('levels: broken reads and slow-downs warn, ETags read by HEAD are debug, the rest info', () => {
    expect(EVENTS.map(eventLevel)).toStrictEqual(['warn', 'info', 'warn', 'info', 'debug', 'info'])
  })

  it('logEvents writes one line and the event at its level, and skips levels the logger lacks', () => {
    const lines: [string, string, unknown][] = []
    const logger = {
      info: (message: string, event: unknown) => lines.push(['info', message, event]),
      warn: (message: string, event: unknown) => lines.push(['warn', message, event]),
    }
    const hook = logEvents(logger)
    for (const event of EVENTS) hook(event)
    expect(lines.map(([level]) => level)).toStrictEqual(['warn', 'info', 'warn', 'info', 'info'])
    expect(lines[0]).toStrictEqual(['warn', 's3exchange: read of a.tar resumed at byte 1048576 (attempt 1): aborted', EVENTS[0]])
    expect(lines[1]?.[1]).toBe('s3exchange: write of m.jsonl retried after attempt 2 (lost-race, HTTP 412)')
    expect(lines[3]?.[1]).toBe('s3exchange: server capability ifMatchForm = bare (learned writing m.jsonl)')
  })

  it('describeEvent names the key of every event', () => {
    for (const event of EVENTS) expect(describeEvent(event)).toContain('key' in event ? String(event.key) : '')
  })
})
