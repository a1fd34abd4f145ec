// The suite's job as a TypeScript guest: write one log line, return the input.
import { defineComponent } from '@sluice/sdk';

export const connector = defineComponent({
  key: 'echo-ts',
  version: '0.1.0',
  label: 'Echo',
  description: 'Returns its input after one log line (benchmark job).',
  actions: {
    echo: {
      label: 'Echo',
      description: 'Returns the input.',
      inputs: { type: 'object' },
      run(ctx, input: Record<string, unknown>) {
        ctx.log.info('echo', { bytes: JSON.stringify(input).length });
        return input;
      },
    },
  },
});
