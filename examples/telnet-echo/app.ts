// A line-protocol server: `telnet 127.0.0.1 2323`, type a line, get it back.
import { defineApp } from 'kobold';

export default defineApp<{ port: number }>({
  name: 'telnet-echo',
  async setup(ctx) {
    const port = ctx.config?.port ?? 2323;
    const address = await ctx.listen(
      { port, maxLineBytes: 1024 },
      {
        onConnection: (socket) => socket.write(`kobold echo (worker ${process.pid}); "quit" to leave\r\n`),
        onLine: (line, socket) => {
          if (line.trim() === 'quit') socket.end('bye\r\n');
          else socket.write(`${line}\r\n`);
        },
      },
    );
    ctx.logger.info(`telnet echo on ${address}`);
  },
});
