// An existing Express app, unchanged, served by Kobold under the instance's prefix.
import express from 'express';
import { defineApp } from 'kobold';

const site = express();
site.get('/', (_req, res) => {
  res.send(`express in worker ${process.pid}`);
});
site.get('/users/:id', (req, res) => {
  res.json({ id: req.params.id, via: 'express' });
});

export default defineApp({
  name: 'express-site',
  setup(ctx) {
    ctx.http.mount(site);
  },
});
