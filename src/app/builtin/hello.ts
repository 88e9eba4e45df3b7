import { defineApp } from '../define.js';

/** The default app until a config names others: answers with its worker's pid. */
export default defineApp({
  name: 'hello',
  setup(ctx) {
    ctx.http.get('/', (_req, res) => {
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(`hello from worker ${process.pid}\n`);
    });
  },
});
