// Three framework apps side by side in one daemon: `npx kobold start -F` in this folder.
import { defineConfig } from 'kobold';

export default defineConfig({
  services: { web: { port: Number(process.env.KOBOLD_PORT ?? 8080), workers: 2 } },
  apps: [
    { name: 'express', module: './express-app.ts', prefix: '/express' },
    { name: 'fastify', module: './fastify-app.ts', prefix: '/fastify' },
    { name: 'hono', module: './hono-app.ts', prefix: '/hono' },
  ],
});
