// kinesalite (a Kinesis implementation) on 127.0.0.1, and in front of it a small proxy that can make
// PutRecords fail the way Kinesis does under load: whole calls answered with a throttling or internal
// error, or chosen entries of a call failed (ProvisionedThroughputExceededException, InternalFailure)
// while the rest go through to kinesalite and the two replies are merged in order.
//
//   node server.js [--detached]
//
// Prints one line, {"kinesalite":PORT,"proxy":PORT}, once both listen (ports chosen by the OS). Exits
// when its stdin closes (unless --detached), so it never outlives the test that started it.
//
// The proxy speaks the AWS JSON 1.1 protocol (Content-Type application/x-amz-json-1.1, X-Amz-Target
// Kinesis_20131202.<Operation>), which aws-sdk-kinesis uses. Anything else that reaches it as
// PutRecords (e.g. CBOR) is answered 400 with a message saying so, so a protocol change in the SDK
// shows up as a clear test failure rather than as faults silently not injected.
//
// Control (plain JSON over HTTP on the proxy's port):
//   POST /__weir/faults  {"calls": [{"status": 400, "type": "ProvisionedThroughputExceededException"}, …],
//                         "entries": [{"contains": "text", "code": "InternalFailure", "times": 2}, …]}
//     calls: the next PutRecords calls are answered whole with these errors, one per call, in order
//     ({"pass": true} lets that call through).
//     entries: an entry whose decoded data contains `contains` fails with `code`, the first `times`
//     times that record is sent (null: every time). Posting replaces the plan and zeroes the stats.
//   GET /__weir/stats    {"putRecordsCalls", "callsFailed", "entriesForwarded", "entriesFailed"}

'use strict';

const http = require('http');
const kinesalite = require('kinesalite');

const JSON_TYPE = 'application/x-amz-json-1.1';
const MESSAGES = {
  ProvisionedThroughputExceededException: 'Rate exceeded for shard shardId-000000000000 in stream under account 000000000000.',
  InternalFailure: 'Internal service failure.',
};

let plan = { calls: [], entries: [] };
let failuresSoFar = new Map(); // rule index + record data → times failed
let stats = {};
function resetStats() {
  stats = { putRecordsCalls: 0, callsFailed: 0, entriesForwarded: 0, entriesFailed: 0 };
}
resetStats();

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res, status, body, contentType) {
  const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': contentType || JSON_TYPE, 'Content-Length': bytes.length, 'x-amzn-RequestId': 'weir-proxy' });
  res.end(bytes);
}

function forward(kinesisPort, req, body) {
  return new Promise((resolve, reject) => {
    const headers = Object.assign({}, req.headers, { 'content-length': body.length });
    const upstream = http.request({ host: '127.0.0.1', port: kinesisPort, method: req.method, path: req.url, headers }, (res) => {
      readBody(res).then((data) => resolve({ status: res.statusCode, headers: res.headers, body: data }), reject);
    });
    upstream.on('error', reject);
    upstream.end(body);
  });
}

// The rule that fails this entry now, if any (and counts the failure).
function failingRule(entry) {
  const data = Buffer.from(entry.Data || '', 'base64').toString('utf8');
  for (let i = 0; i < plan.entries.length; i++) {
    const rule = plan.entries[i];
    if (!data.includes(rule.contains)) continue;
    const key = i + '\u0000' + data;
    const done = failuresSoFar.get(key) || 0;
    if (rule.times === null || rule.times === undefined || done < rule.times) {
      failuresSoFar.set(key, done + 1);
      return rule;
    }
  }
  return null;
}

async function putRecords(kinesisPort, req, res, body) {
  stats.putRecordsCalls++;
  const call = plan.calls.shift();
  if (call && !call.pass) {
    stats.callsFailed++;
    return send(res, call.status || 400, { __type: call.type, message: call.message || MESSAGES[call.type] || call.type });
  }
  const request = JSON.parse(body.toString('utf8'));
  const records = request.Records || [];
  const failures = records.map(failingRule);
  const forwarded = records.filter((_, i) => !failures[i]);
  let upstreamRecords = [];
  if (forwarded.length > 0) {
    const reply = await forward(kinesisPort, req, Buffer.from(JSON.stringify(Object.assign({}, request, { Records: forwarded }))));
    if (reply.status !== 200) {
      res.writeHead(reply.status, reply.headers);
      return res.end(reply.body);
    }
    upstreamRecords = JSON.parse(reply.body.toString('utf8')).Records;
  }
  stats.entriesForwarded += forwarded.length;
  let next = 0;
  let failed = 0;
  const merged = failures.map((rule) => {
    if (!rule) return upstreamRecords[next++];
    failed++;
    return { ErrorCode: rule.code, ErrorMessage: rule.message || MESSAGES[rule.code] || rule.code };
  });
  stats.entriesFailed += failed;
  return send(res, 200, { FailedRecordCount: failed, Records: merged });
}

function proxy(kinesisPort) {
  return http.createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      if (req.url === '/__weir/faults' && req.method === 'POST') {
        const next = JSON.parse(body.toString('utf8') || '{}');
        plan = { calls: next.calls || [], entries: next.entries || [] };
        failuresSoFar = new Map();
        resetStats();
        return send(res, 200, { ok: true }, 'application/json');
      }
      if (req.url === '/__weir/stats') {
        return send(res, 200, stats, 'application/json');
      }
      const target = String(req.headers['x-amz-target'] || '');
      if (target.endsWith('.PutRecords')) {
        if (!String(req.headers['content-type'] || '').startsWith(JSON_TYPE)) {
          return send(res, 400, {
            __type: 'SerializationException',
            message: `the weir fault proxy handles AWS JSON 1.1 only, got Content-Type ${req.headers['content-type']}`,
          });
        }
        return await putRecords(kinesisPort, req, res, body);
      }
      const reply = await forward(kinesisPort, req, body);
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body);
    } catch (e) {
      send(res, 500, { __type: 'InternalFailure', message: `weir fault proxy: ${e.stack || e}` });
    }
  });
}

const kinesis = kinesalite({ createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50 });
kinesis.listen(0, '127.0.0.1', () => {
  const kinesisPort = kinesis.address().port;
  const front = proxy(kinesisPort);
  front.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ kinesalite: kinesisPort, proxy: front.address().port }) + '\n');
  });
});
// `--detached` (scripts/bench-lambda.sh, which stops it by PID): keep running whatever stdin does.
if (!process.argv.includes('--detached')) {
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
