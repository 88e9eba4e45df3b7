// An existing Hono app, unchanged, through Hono's Node adapter.
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { defineApp } from 'kobold';

const site = new Hono();
site.get('/', (c) => c.text(`hono in worker ${process.pid}`));
site.get('/users/:id', (c) => c.json({ id: c.req.param('id'), via: 'hono' }));

export default defineApp({
  name: 'hono-site',
  setup(ctx) {
    ctx.http.mount(getRequestListener(site.fetch));
  },
});
