// Before: an app as the Serverless Devs start-koa template runs it: an FC custom runtime, port 9000.
import Koa from 'koa';

const app = new Koa();
app.use(async (ctx) => {
  ctx.body = { hello: 'world', requestId: ctx.get('x-fc-request-id') };
});

app.listen(9000);
