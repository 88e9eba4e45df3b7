// Text checks applied to every message before it is published: clean-up, length, the word
// filter (mask or reject) and link detection. Text stays plain text; links are reported
// as spans so a client can make them clickable without parsing markup.
import { KoboldError } from '../../errors.js';
import type { LinkSpan } from './messages.js';

export interface FilterOptions {
  maxMessageLength: number;
  filter: { words: string[]; mode: 'mask' | 'reject' };
  links: 'allow' | 'plain' | 'reject';
}

export interface FilteredText {
  readonly text: string;
  readonly links?: LinkSpan[];
}

// C0/C1 controls (except tab) and bidi overrides that could disguise text.
const INVISIBLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const LINK = /\b(?:https?:\/\/|www\.)[^\s<>"']+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?)\]}]+$/;

/** A filter built once from the config; `apply` runs per message. */
export class TextFilter {
  private readonly words: RegExp | null;

  constructor(private readonly options: FilterOptions) {
    const words = options.filter.words.map(escapeRegExp);
    // Whole words only: "class" is not caught by a filter on "ass".
    this.words = words.length === 0 ? null : new RegExp(`(?<![\\p{L}\\p{N}_])(?:${words.join('|')})(?![\\p{L}\\p{N}_])`, 'giu');
  }

  /** The text to publish; throws KOBOLD_ERR_CHAT_* naming why a message is refused. */
  apply(raw: string): FilteredText {
    const text = raw.replace(INVISIBLE, ' ').trim();
    if (text === '') throw new KoboldError('KOBOLD_ERR_CHAT_EMPTY');
    const length = [...text].length;
    if (length > this.options.maxMessageLength) throw new KoboldError('KOBOLD_ERR_CHAT_TOO_LONG', { length, limit: this.options.maxMessageLength });
    const masked = this.filterWords(text);
    const links = this.options.links === 'plain' ? [] : findLinks(masked);
    if (links.length > 0 && this.options.links === 'reject') throw new KoboldError('KOBOLD_ERR_CHAT_REJECTED', { reason: 'links are not allowed here' });
    return links.length === 0 ? { text: masked } : { text: masked, links };
  }

  private filterWords(text: string): string {
    if (this.words === null) return text;
    if (this.options.filter.mode === 'reject') {
      this.words.lastIndex = 0;
      if (this.words.test(text)) throw new KoboldError('KOBOLD_ERR_CHAT_REJECTED', { reason: 'it contains a filtered word' });
      return text;
    }
    return text.replace(this.words, (word) => word.replace(/[\p{L}\p{N}]/gu, '*'));
  }
}

/** http(s) and www. links in `text`, without trailing punctuation. */
export function findLinks(text: string): LinkSpan[] {
  const spans: LinkSpan[] = [];
  for (const match of text.matchAll(LINK)) {
    const found = match[0].replace(TRAILING_PUNCTUATION, '');
    if (found.length < 5) continue;
    const start = match.index ?? 0;
    const url = /^www\./i.test(found) ? 'https://' + found : found;
    spans.push({ start, end: start + found.length, url });
  }
  return spans;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
