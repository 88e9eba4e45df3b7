// Long-polling and refresh client transports: each request carries the client's positions
// and gets back what came after them (a GET, or a POST when there are many channels).
// Long-polling waits server-side; refresh polls on a timer.
import { type ClientTransport, HubClientError, pollJson, positionsObject, postJson, type TransportContext } from '../types.js';

export class PollingClientTransport implements ClientTransport {
  private abort: AbortController | null = null;
  private running = false;

  constructor(
    readonly name: 'longpoll' | 'refresh',
    private readonly context: TransportContext,
    private readonly refreshIntervalMs: number,
  ) {}

  async open(): Promise<void> {
    await this.poll('/refresh'); // proves the endpoint works and catches up at once
    this.running = true;
    void this.loop();
  }

  resync(): void {
    this.abort?.abort(); // a waiting long-poll restarts with the new channels
  }

  command(cmd: string, fields: Record<string, unknown>): Promise<any> {
    return postJson(this.context, '/command', { cmd, ...fields }).then((answer) => answer.result);
  }

  close(): void {
    this.running = false;
    this.abort?.abort();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        if (this.name === 'refresh') await delay(this.refreshIntervalMs);
        if (!this.running) return;
        await this.poll(this.name === 'longpoll' ? '/poll' : '/refresh');
      } catch (error) {
        if (!this.running) return;
        if ((error as Error).name === 'AbortError') continue;
        this.running = false;
        this.context.events.closed(1006, error instanceof HubClientError ? error.message : 'poll failed');
        return;
      }
    }
  }

  private async poll(path: string): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    const answer = await pollJson(this.context, path, positionsObject(this.context.positions()), abort.signal);
    for (const [channel, result] of Object.entries(answer.channels ?? {})) this.context.events.caughtUp(channel, result as any);
    for (const [channel, error] of Object.entries(answer.errors ?? {})) this.context.events.channelError(channel, error as any);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
