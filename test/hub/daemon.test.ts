// The hub in the real daemon on its default backend, shared memory (daemon-cases.ts).
import { hubDaemonCases } from './daemon-cases.js';

hubDaemonCases('shm');
