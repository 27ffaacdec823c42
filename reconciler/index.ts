/** Public surface of reconciler/: the control plane (sources, reconcile, the gateway, the HTTP API). */
export type * from './types.js';
export { PlaneError, PLANE_ERROR_STATUS, type PlaneErrorCode } from './errors.js';
export { Gateway, type GatewayOptions } from './gateway.js';
export { routeVersion } from './admission.js';
export type { RunDetail, StepView, GateView, OutcomeView } from './run-views.js';
