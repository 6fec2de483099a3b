import { bundleFunctions } from './bundle.js';

// `npm run build:fc`: the code folders s.yaml deploys (dist/transcode, dist/dest-succ, dist/dest-fail).
const folders = await bundleFunctions();
for (const [name, folder] of Object.entries(folders)) console.log(`${name.padEnd(10)} ${folder}`);
