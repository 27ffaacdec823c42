/** Public surface of common/: what every layer shares — the error base, the clock, small guards. A leaf: imports nothing of ours. */
export { BeaconError, errorBody, errorLine, isErrorCode, retryOf, type BeaconErrorOptions, type ErrorBody } from './errors.js';
export { systemClock, type Clock } from './clock.js';
export { backoffDelay, type BackoffOptions } from './retry.js';
export { isRecord } from './guards.js';
export { closestWord } from './words.js';
export { isKernelSetting, KERNEL_SETTINGS } from './settings.js';
