// The hub in the real daemon on the socket backend (the fallback), same cases as daemon.test.ts.
import { hubDaemonCases } from './daemon-cases.js';

hubDaemonCases('socket');
