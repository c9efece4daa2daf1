// A grpc-js client for benches/flavors/crosscheck.py: the same calls as client.py.
//
//   node client.js ADDR SERVICE_CONFIG N SPACING_MS DEADLINE_S
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');

const [addr, configPath, nText, spacingText, deadlineText] = process.argv.slice(2);
const n = Number(nText);
const spacing = Number(spacingText);
const deadline = Number(deadlineText) * 1000;
const client = new grpc.Client(addr, grpc.credentials.createInsecure(), {
  'grpc.service_config': fs.readFileSync(configPath, 'utf8'),
  'grpc.service_config_disable_resolution': 1,
});
const codeName = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));
const request = (id) => {
  const raw = Buffer.from(id);
  return Buffer.concat([Buffer.from([0x0a, raw.length]), raw]);
};
const call = (id, done) =>
  client.makeUnaryRequest(
    '/resilbench.v1.Backend/Call',
    (b) => b,
    (b) => b,
    request(id),
    new grpc.Metadata(),
    { deadline: Date.now() + deadline },
    (err) => done(err ? codeName[err.code] : 'OK'),
  );

call('warmup', () => {
  const results = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    setTimeout(() => {
      const t0 = performance.now();
      call(String(i), (status) => {
        results.push({ id: i, status, ms: Math.round((performance.now() - t0) * 1000) / 1000 });
        if (results.length === n) {
          results.sort((a, b) => a.id - b.id).forEach((r) => console.log(JSON.stringify(r)));
          client.close();
        }
      });
    }, Math.max(0, start + i * spacing - performance.now()));
  }
});
