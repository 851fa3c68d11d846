// pg-boss beside touchpointd's PostgreSQL figures (docs/benchmarks.md): the
// same three figures as tests/bench/e2e with --store postgres, measured on
// pg-boss's own API from this one Node process. Prints
// `metric=NAME value=NUMBER unit=UNIT` lines and `pgboss_bench: ...` notes.
//
//   node bench.mjs --url postgresql://USER@HOST:PORT/DB [--scheduled 200000]
//                  [--fired 100000] [--lateness-s 10] [--consumers 2]
//                  [--fire-batch 1000] [--fire-batch-large 5000]
//
// run.sh starts a PostgreSQL server with the e2e bench's settings and runs this.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import PgBoss from 'pg-boss'

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    scheduled: { type: 'string', default: '200000' },
    fired: { type: 'string', default: '100000' },
    'lateness-s': { type: 'string', default: '10' },
    consumers: { type: 'string', default: '2' },
    'fire-batch': { type: 'string', default: '1000' },
    'fire-batch-large': { type: 'string', default: '5000' }
  }
})
if (!opt.url) throw new Error('usage: node bench.mjs --url postgresql://.../DB')
const SCHEDULED = Number(opt.scheduled)
const FIRED = Number(opt.fired)
const LATENESS_S = Number(opt['lateness-s'])
const CONSUMERS = Number(opt.consumers)
const FIRE_BATCH = Number(opt['fire-batch'])
const FIRE_BATCH_LARGE = Number(opt['fire-batch-large'])
const INSERT_BATCH = 1000 // jobs per boss.insert call
const IN_FLIGHT = 2 // boss.insert calls at once
const POLL_S = 0.5 // pg-boss 10's minimum pollingIntervalSeconds (POLICY.MIN_POLLING_INTERVAL_MS)

const version = JSON.parse(readFileSync(new URL('./node_modules/pg-boss/package.json', import.meta.url))).version
const note = text => console.log(`pgboss_bench: ${text}`)
const metric = (name, value, unit) => console.log(`metric=${name} value=${Number(value.toPrecision(6))} unit=${unit}`)
// Wall-clock milliseconds with sub-millisecond resolution, comparable with
// the server's now() (same host, same clock).
const wall = () => performance.timeOrigin + performance.now()
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
async function until (ms) { while (wall() < ms) await sleep(Math.min(50, Math.max(1, ms - wall()))) }

// One boss.insert per batch, IN_FLIGHT of them at once; returns the seconds taken.
async function insertAll (boss, batches) {
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < batches.length) await boss.insert(batches[next++])
  }))
  return (performance.now() - started) / 1000
}
// `count` jobs for `queue` in batches of INSERT_BATCH; job i due at dueAt(i).
function batchesOf (queue, count, dueAt) {
  const batches = []
  for (let b = 0; b < count; b += INSERT_BATCH) {
    batches.push(Array.from({ length: Math.min(INSERT_BATCH, count - b) }, (_, k) => {
      const i = b + k
      const due = dueAt(i)
      return { name: queue, data: { buyer: i, topic: `t${i % 10}`, due }, startAfter: new Date(due) }
    }))
  }
  return batches
}
// A consumer as the e2e bench's: fetch up to `batch`, complete them (awaited),
// again at once; 1 ms pause when nothing was due. Returns the wall time of
// the last completion.
async function consume (boss, queue, expected, consumers, batch, onJobs = () => {}) {
  let done = 0
  let last = 0
  const deadline = wall() + 10 * 60e3
  await Promise.all(Array.from({ length: consumers }, async () => {
    while (done < expected && wall() < deadline) {
      const jobs = await boss.fetch(queue, { batchSize: batch })
      if (jobs.length === 0) { await sleep(1); continue }
      onJobs(jobs, wall())
      await boss.complete(queue, jobs.map(j => j.id))
      done += jobs.length
      last = Math.max(last, wall())
    }
  }))
  if (done !== expected) throw new Error(`${queue}: completed ${done} of ${expected}`)
  return last
}
function reportLateness (prefix, late) {
  late.sort((a, b) => a - b)
  metric(`${prefix}_p50_ms`, percentile(late, 0.50), 'ms')
  metric(`${prefix}_p99_ms`, percentile(late, 0.99), 'ms')
  metric(`${prefix}_max_ms`, late[late.length - 1], 'ms')
}

const boss = new PgBoss({ connectionString: opt.url })
boss.on('error', err => console.error('pg-boss error:', err))
await boss.start()
const server = async sql => (await boss.getDb().executeSql(sql)).rows[0]
const settings = await server(`SELECT current_setting('server_version') AS v,
  current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc,
  current_setting('full_page_writes') AS fpw, current_setting('shared_buffers') AS sb,
  current_setting('max_wal_size') AS wal, current_setting('checkpoint_timeout') AS ct`)
note(`pg-boss ${version} (newest release whose engines allow Node ${process.versions.node}), node ${process.versions.node}, ` +
  `PostgreSQL ${settings.v} (fsync=${settings.fsync} synchronous_commit=${settings.sc} full_page_writes=${settings.fpw} ` +
  `shared_buffers=${settings.sb} max_wal_size=${settings.wal} checkpoint_timeout=${settings.ct})`)
note('pg-boss constructed with only a connection string: its defaults (pool of 10 connections, maintenance every 120 s, ' +
  'cron/clock-skew monitor on, retryLimit 2, expireIn 15 min); one queue per figure, created with createQueue (standard policy), ' +
  'each its own partition table, left in place (deleteQueue refuses a queue with jobs); this Node process and the server share the machine\'s cores')

// 1. Scheduling: delayed jobs, due an hour from now and then one every 10 s.
let insertRate
{
  const queue = 'scheduled'
  await boss.createQueue(queue)
  const base = Date.now() + 3600e3
  const batches = batchesOf(queue, SCHEDULED, i => base + i * 10e3)
  const seconds = await insertAll(boss, batches)
  const stored = await boss.getQueueSize(queue)
  if (stored !== SCHEDULED) throw new Error(`scheduled: ${stored} of ${SCHEDULED} stored`)
  note(`scheduled: ${SCHEDULED} jobs with a startAfter Date in ${seconds.toFixed(3)} s; boss.insert(jobs) ` +
    `of ${INSERT_BATCH} jobs each, ${IN_FLIGHT} calls in flight, job arrays built before the clock starts`)
  metric('pgboss_scheduled_per_s', SCHEDULED / seconds, '1/s')
  insertRate = SCHEDULED / seconds
}

// 2. Firing: FIRED jobs due at one instant, far enough ahead for the inserts;
// once with the e2e bench's lease size (its daemon's most, 1000), once with
// a larger batch, which pg-boss's fetch favours (see the note).
async function fire (queue, batch) {
  await boss.createQueue(queue)
  const due = Math.ceil(wall() + 2000 + 2000 * FIRED / insertRate)
  const seconds = await insertAll(boss, batchesOf(queue, FIRED, () => due))
  if (wall() > due - 200) throw new Error('fired: the inserts ran past the due instant; lower --fired')
  await until(due)
  const last = await consume(boss, queue, FIRED, CONSUMERS, batch)
  note(`${queue}: ${FIRED} jobs inserted in ${seconds.toFixed(3)} s, all due at one instant; ${CONSUMERS} consumers each ` +
    `looping boss.fetch(batchSize ${batch}) then awaited boss.complete(ids), started at the due instant, ` +
    `1 ms pause only when fetch found nothing; ${FIRED} completed ${((last - due) / 1000).toFixed(3)} s after the due instant`)
  return FIRED / ((last - due) / 1000)
}
metric('pgboss_fired_per_s', await fire('fired', FIRE_BATCH), '1/s')
metric(`pgboss_fired_per_s_batch_${FIRE_BATCH_LARGE}`, await fire('fired_large', FIRE_BATCH_LARGE), '1/s')
note(`fired: pgboss_fired_per_s fetches ${FIRE_BATCH} at a time as the e2e bench's consumers lease 1000 (touchpointd's most) and ack; ` +
  'pg-boss\'s fetch sorts every due job of the queue (ORDER BY priority, created_on, id ... LIMIT n FOR UPDATE SKIP LOCKED), ' +
  `so fewer, larger fetches drain a backlog faster: hence the _batch_${FIRE_BATCH_LARGE} figure. ` +
  `boss.work is not used: its loop waits its polling interval (>= ${POLL_S} s) after every fetch, even a full one, ` +
  'and does not await its complete')

// 3. Lateness at light load: one job due every 5 ms for LATENESS_S seconds,
// each with its own millisecond startAfter. (a) boss.work at its minimum
// polling interval; (b) the e2e bench's consumer: a fetch loop, 1 ms idle.
const count = 200 * LATENESS_S
{
  const queue = 'lateness'
  await boss.createQueue(queue)
  const first = Math.ceil(wall() + 3000)
  await insertAll(boss, batchesOf(queue, count, i => first + 5 * i))
  const late = []
  await boss.work(queue, { pollingIntervalSeconds: POLL_S, batchSize: 1000 }, async jobs => {
    const at = wall()
    for (const job of jobs) late.push(at - job.data.due)
  })
  const deadline = first + 5 * count + 30e3
  while (late.length < count && wall() < deadline) await sleep(50)
  await boss.offWork(queue)
  if (late.length !== count) throw new Error(`lateness: ${late.length} of ${count} jobs handled`)
  note(`lateness: ${count} jobs, one due every 5 ms over ${LATENESS_S} s (startAfter: a Date, stored to the ms in a timestamptz); ` +
    `boss.work(queue, {pollingIntervalSeconds: ${POLL_S}, batchSize: 1000}): ${POLL_S} s is the least pg-boss ${version} accepts ` +
    '(it asserts pollingIntervalSeconds >= 0.5); lateness = when the handler got the job - its startAfter')
  reportLateness('pgboss_lateness', late)
  await sleep(1000) // the worker's last boss.complete, which boss.work does not await
}
{
  const queue = 'lateness_fetch'
  await boss.createQueue(queue)
  const first = Math.ceil(wall() + 3000)
  await insertAll(boss, batchesOf(queue, count, i => first + 5 * i))
  const late = []
  await consume(boss, queue, count, 1, 1000, (jobs, at) => { for (const job of jobs) late.push(at - job.data.due) })
  note(`lateness_fetch_loop: the same ${count} jobs taken by one consumer as the e2e bench's lateness consumer: ` +
    'boss.fetch(batchSize 1000) every 1 ms while nothing is due (no polling floor on fetch), awaited complete; ' +
    'lateness = when fetch returned - startAfter')
  reportLateness('pgboss_lateness_fetch_loop', late)
}

await boss.stop({ graceful: false })
