import { sampleContext, sampleEvent } from './events.js';
import { handler } from './index.js';

const show = (label: string, value: unknown) => console.log(`\n# ${label}\n${JSON.stringify(value, null, 2)}`);

show('sync GET /hello?name=fc', await handler(sampleEvent('GET', '/hello', { query: { name: 'fc' } }), sampleContext));

const accepted = await handler(
  sampleEvent('POST', '/thumbnails', {
    body: { image: 'cat.jpg' },
    headers: { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 'thumb_cat' },
  }),
  sampleContext,
);
show('async POST /thumbnails (answered at once)', accepted);
show('the task while it runs', await handler.tasks.get('thumb_cat'));
await handler.drain();
show('the task once done', await handler.tasks.get('thumb_cat'));
await handler.close();
