// `hello-flow-ts`: a code-native flow in TypeScript. It asks the `hello` component to
// echo a greeting, counts its runs in flow state (compare-and-swap), and with
// `{"fail": KIND}` makes `hello` fail, so the caller sees that the error's kind
// survives the call (a retryable failure stays retryable).

import { defineFlow } from '@sluice/sdk/flow';

interface Payload {
  name?: string;
  fail?: string;
}

export const codeFlow = defineFlow<Payload>({
  name: 'hello-flow-ts',
  description: 'Greets through the hello component and counts its runs.',
  trigger: { type: 'webhook' },
  payload: {
    type: 'object',
    properties: { name: { type: 'string', default: 'world' }, fail: { type: 'string' } },
  },
  run(ctx, payload) {
    ctx.log.info('hello-flow-ts execution', { attempt: ctx.attempt });
    if (payload.fail !== undefined) {
      ctx.invoke('hello', 'fail', { kind: payload.fail, message: 'asked to fail' });
    }
    const echoed = ctx.invokeJson<{ greeting: string }>('hello', 'echo', { greeting: `Hello, ${payload.name}!` });
    const runs = ctx.state.flow.update<number>('runs', (n) => (n ?? 0) + 1);
    return { greeting: echoed.greeting, runs, execution: ctx.executionId };
  },
});
