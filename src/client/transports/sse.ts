// Server-Sent Events client transport, read with fetch streaming (so it can send an
// Authorization header and runs in Node too). Commands go over POST /command.
import { type ClientTransport, HubClientError, positionsObject, postJson, type TransportContext } from '../types.js';

export class SseClientTransport implements ClientTransport {
  readonly name = 'sse';
  private abort: AbortController | null = null;
  private reopening = false;
  /** An open is under way; a resync meanwhile waits for it instead of aborting it. */
  private opening = false;
  private resyncAfterOpen = false;

  constructor(private readonly context: TransportContext) {}

  async open(): Promise<void> {
    this.opening = true;
    try {
      await this.openStream();
    } catch (error) {
      this.resyncAfterOpen = false;
      throw error;
    } finally {
      this.opening = false;
    }
    if (this.resyncAfterOpen) {
      // Channels changed while the stream opened with the old list: reopen once with the new one.
      this.resyncAfterOpen = false;
      this.resync();
    }
  }

  private async openStream(): Promise<void> {
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    const timer = setTimeout(() => abort.abort(), this.context.openTimeoutMs);
    const token = await this.context.token();
    const url = this.context.baseUrl + '/sse?subscribe=' + encodeURIComponent(JSON.stringify(positionsObject(this.context.positions())));
    let response: Response;
    try {
      response = await this.context.fetch(url, {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        signal: abort.signal,
      });
    } catch {
      clearTimeout(timer);
      throw new HubClientError('UNREACHABLE', 'SSE endpoint unreachable');
    }
    if (!response.ok || response.body === null) {
      clearTimeout(timer);
      const answer = (await response.json().catch(() => ({}))) as { error?: { code: string; message: string } };
      throw new HubClientError(answer.error?.code ?? `HTTP_${response.status}`, answer.error?.message ?? `SSE answered ${response.status}`);
    }
    const connected = this.read(response.body.getReader(), abort);
    await connected;
    clearTimeout(timer);
  }

  /** Resolves when the `connected` event arrived; keeps reading in the background. */
  private read(reader: ReadableStreamDefaultReader<Uint8Array>, abort: AbortController): Promise<void> {
    const events = this.context.events;
    return new Promise((resolve, reject) => {
      let buffer = '';
      let disconnect = { code: 1006, reason: 'stream ended' };
      let connected = false;
      const decoder = new TextDecoder();
      const pump = async (): Promise<void> => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block
              .split('\n')
              .filter((line) => line.startsWith('data: '))
              .map((line) => line.slice(6))
              .join('\n');
            if (data === '') continue;
            const frame = JSON.parse(data);
            if (frame.push === 'connected') {
              connected = true;
              resolve();
            } else if (frame.push === 'subscribed') events.caughtUp(frame.channel, frame);
            else if (frame.push === 'pub') events.publication(frame);
            else if (frame.push === 'join' || frame.push === 'leave') events.presence(frame.push, frame.channel, frame.user);
            else if (frame.push === 'gap') events.gap(frame.channel, { offset: frame.offset, epoch: frame.epoch });
            else if (frame.push === 'disconnect') disconnect = { code: frame.code, reason: frame.reason };
            else if (frame.error !== undefined && frame.channel !== undefined) events.channelError(frame.channel, frame.error);
          }
        }
      };
      pump()
        .catch(() => {})
        .finally(() => {
          if (!connected) reject(new HubClientError('CLOSED', 'SSE stream ended before it connected'));
          else if (this.abort === abort) events.closed(disconnect.code, disconnect.reason);
        });
    });
  }

  resync(): void {
    // The stream's channels are fixed: reopen it with the current positions, once for
    // all the changes made in this turn.
    if (this.opening) {
      this.resyncAfterOpen = true;
      return;
    }
    if (this.reopening) return;
    this.reopening = true;
    setTimeout(() => {
      this.reopening = false;
      if (this.abort === null) return;
      this.open().catch(() => this.context.events.closed(1006, 'SSE reopen failed'));
    }, 0);
  }

  command(cmd: string, fields: Record<string, unknown>): Promise<any> {
    return postJson(this.context, '/command', { cmd, ...fields }).then((answer) => answer.result);
  }

  close(): void {
    const abort = this.abort;
    this.abort = null;
    abort?.abort();
  }
}
