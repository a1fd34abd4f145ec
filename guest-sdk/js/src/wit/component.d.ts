/// <reference path="./interfaces/sluice-flow-config.d.ts" />
/// <reference path="./interfaces/sluice-flow-connections.d.ts" />
/// <reference path="./interfaces/sluice-flow-connector.d.ts" />
/// <reference path="./interfaces/sluice-flow-context.d.ts" />
/// <reference path="./interfaces/sluice-flow-log.d.ts" />
/// <reference path="./interfaces/sluice-flow-state.d.ts" />
/// <reference path="./interfaces/sluice-flow-types.d.ts" />
/// <reference path="./interfaces/wasi-clocks-monotonic-clock.d.ts" />
/// <reference path="./interfaces/wasi-clocks-wall-clock.d.ts" />
/// <reference path="./interfaces/wasi-http-outgoing-handler.d.ts" />
/// <reference path="./interfaces/wasi-http-types.d.ts" />
/// <reference path="./interfaces/wasi-io-error.d.ts" />
/// <reference path="./interfaces/wasi-io-poll.d.ts" />
/// <reference path="./interfaces/wasi-io-streams.d.ts" />
/// <reference path="./interfaces/wasi-random-random.d.ts" />
declare module 'sluice:flow/component@0.1.0' {
  export type * as SluiceFlowConfig010 from 'sluice:flow/config@0.1.0'; // import sluice:flow/config@0.1.0
  export type * as SluiceFlowConnections010 from 'sluice:flow/connections@0.1.0'; // import sluice:flow/connections@0.1.0
  export type * as SluiceFlowContext010 from 'sluice:flow/context@0.1.0'; // import sluice:flow/context@0.1.0
  export type * as SluiceFlowLog010 from 'sluice:flow/log@0.1.0'; // import sluice:flow/log@0.1.0
  export type * as SluiceFlowState010 from 'sluice:flow/state@0.1.0'; // import sluice:flow/state@0.1.0
  export type * as SluiceFlowTypes010 from 'sluice:flow/types@0.1.0'; // import sluice:flow/types@0.1.0
  export type * as WasiClocksMonotonicClock0212 from 'wasi:clocks/monotonic-clock@0.2.12'; // import wasi:clocks/monotonic-clock@0.2.12
  export type * as WasiClocksWallClock0212 from 'wasi:clocks/wall-clock@0.2.12'; // import wasi:clocks/wall-clock@0.2.12
  export type * as WasiHttpOutgoingHandler0212 from 'wasi:http/outgoing-handler@0.2.12'; // import wasi:http/outgoing-handler@0.2.12
  export type * as WasiHttpTypes0212 from 'wasi:http/types@0.2.12'; // import wasi:http/types@0.2.12
  export type * as WasiIoError0212 from 'wasi:io/error@0.2.12'; // import wasi:io/error@0.2.12
  export type * as WasiIoPoll0212 from 'wasi:io/poll@0.2.12'; // import wasi:io/poll@0.2.12
  export type * as WasiIoStreams0212 from 'wasi:io/streams@0.2.12'; // import wasi:io/streams@0.2.12
  export type * as WasiRandomRandom0212 from 'wasi:random/random@0.2.12'; // import wasi:random/random@0.2.12
  export * as connector from 'sluice:flow/connector@0.1.0'; // export sluice:flow/connector@0.1.0
}
