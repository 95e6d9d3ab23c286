import * as dashboard from '@sluice/dashboard';
import { bridgeToOpenTelemetry } from '@sluice/opentelemetry';

describe('@sluice/dashboard and the OpenTelemetry bridge', () => {
  it('still exports the bridge, which now lives in @sluice/opentelemetry', () => {
    expect(dashboard.bridgeToOpenTelemetry).toBe(bridgeToOpenTelemetry);
  });
});
