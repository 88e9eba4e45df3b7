// An existing Fastify app, unchanged: Kobold hands it requests through `server.routing`.
import Fastify from 'fastify';
import { defineApp } from 'kobold';

export default defineApp({
  name: 'fastify-site',
  async setup(ctx) {
    const server = Fastify();
    server.get('/', async () => `fastify in worker ${process.pid}`);
    server.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id, via: 'fastify' }));
    await server.ready();
    ctx.http.mount((req, res) => server.routing(req, res));
    ctx.onClose(() => server.close());
  },
});
