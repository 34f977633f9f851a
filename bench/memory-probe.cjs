// bench/backups --memory-breakdown: loaded into the server with --require; samples process.memoryUsage()
// and V8 heap spaces every 250 ms into $SV_PROBE_OUT (JSON lines, MB). Diagnostics only, never in production.
const fs = require('node:fs');
const v8 = require('node:v8');
const out = process.env.SV_PROBE_OUT;
const fd = fs.openSync(out, 'a');
setInterval(() => {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_used_size / 1048576)]));
  const h = v8.getHeapStatistics();
  fs.writeSync(fd, JSON.stringify({ t: Date.now(), rss: m.rss >> 20, heapTotal: m.heapTotal >> 20, heapUsed: m.heapUsed >> 20, external: m.external >> 20, arrayBuffers: m.arrayBuffers >> 20, malloced: h.malloced_memory >> 20, spaces }) + '\n');
}, 250).unref();
