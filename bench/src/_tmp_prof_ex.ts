import serverless from 'serverless-http';
import { apiGatewayV2Event, expressApp, GET, lambdaContext } from './bridge-apps.js';
const h = serverless(expressApp()) as any;
const ev = apiGatewayV2Event(GET);
const tick = () => new Promise<void>((r) => setImmediate(r));
for (let r = 0; r < 5; r++) {
  const N = 20000; const t = performance.now();
  for (let i = 0; i < N; i++) { await h(ev, lambdaContext); if ((i & 15) === 15) await tick(); }
  console.log(((performance.now() - t) * 1000 / N).toFixed(2), 'us/op');
}
