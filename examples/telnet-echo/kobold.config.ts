import { defineConfig } from 'kobold';

export default defineConfig({
  services: { web: { port: Number(process.env.KOBOLD_PORT ?? 8080), workers: 2 } },
  apps: [{ name: 'echo', module: './app.ts', config: { port: Number(process.env.ECHO_PORT ?? 2323) } }],
});
